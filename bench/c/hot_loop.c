/* The loop of lib/bench/hot_path.ts in plain C over libibverbs: the "same loop in C"
 * reference for the FFI benchmark. Per round: post one RECV on QP B, one signaled inline
 * 64-byte SEND on QP A, poll each CQ (16 entries per call) until its completion arrives,
 * check the received word. Then ns per ibv_poll_cq on an empty CQ.
 *
 *   hot_loop DEVICE_A ADDRESS_A DEVICE_B ADDRESS_B [ROUNDS] [WARMUP]
 *
 * Prints one JSON line: {"way":"c","rounds":N,"nsPerRound":X,"nsPerEmptyPoll":Y}.
 * Built by lib/bench/c_loop.ts: gcc -O2 -o .lab/bench/hot_loop bench/c/hot_loop.c -libverbs
 */
#include <arpa/inet.h>
#include <infiniband/verbs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS_MAX 10000000L
#define POLL_SPIN_MAX 10000000L
#define EMPTY_POLLS_MAX 100000L
#define POLL_BATCH 16
#define MSG_BYTES 64

#define DIE(...) do { fprintf(stderr, "hot_loop: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

struct side {
  struct ibv_context *ctx;
  struct ibv_pd *pd;
  struct ibv_cq *cq;
  struct ibv_qp *qp;
  int gid_index;
  union ibv_gid gid;
};

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static struct ibv_context *open_device(const char *name) {
  int n = 0;
  struct ibv_device **list = ibv_get_device_list(&n);
  if (!list) DIE("ibv_get_device_list failed: is rdma_rxe loaded?");
  struct ibv_context *ctx = NULL;
  for (int i = 0; i < n; i++)
    if (!strcmp(ibv_get_device_name(list[i]), name)) ctx = ibv_open_device(list[i]);
  ibv_free_device_list(list);
  if (!ctx) DIE("cannot open device %s (ibv_devices lists the devices)", name);
  return ctx;
}

/* The GID index whose GID is ::ffff:ADDRESS (RoCEv2 over IPv4), like Context.roceV2Gid. */
static int find_gid(struct ibv_context *ctx, const char *address, union ibv_gid *out) {
  struct in_addr ip;
  if (inet_pton(AF_INET, address, &ip) != 1) DIE("'%s' is not an IPv4 address", address);
  struct ibv_port_attr port;
  if (ibv_query_port(ctx, 1, &port)) DIE("ibv_query_port failed");
  for (int i = 0; i < port.gid_tbl_len && i < 256; i++) {
    if (ibv_query_gid(ctx, 1, i, out)) continue;
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(out->raw, prefix, 12) && !memcmp(out->raw + 12, &ip, 4)) return i;
  }
  DIE("no RoCEv2 GID for %s on %s (does the netdev have that address?)", address,
      ibv_get_device_name(ctx->device));
}

static void make_side(struct side *s, struct ibv_context *ctx, struct ibv_pd *pd, const char *address) {
  s->ctx = ctx;
  s->pd = pd;
  s->cq = ibv_create_cq(ctx, 64, NULL, NULL, 0);
  if (!s->cq) DIE("ibv_create_cq failed");
  struct ibv_qp_init_attr attr = {
      .send_cq = s->cq, .recv_cq = s->cq, .qp_type = IBV_QPT_RC,
      .cap = {.max_send_wr = 16, .max_recv_wr = 16, .max_send_sge = 1, .max_recv_sge = 1,
              .max_inline_data = MSG_BYTES}};
  s->qp = ibv_create_qp(pd, &attr);
  if (!s->qp) DIE("ibv_create_qp failed");
  s->gid_index = find_gid(ctx, address, &s->gid);
}

static void connect_qp(struct side *me, struct side *peer) {
  struct ibv_qp_attr a = {.qp_state = IBV_QPS_INIT, .port_num = 1,
                          .qp_access_flags = IBV_ACCESS_LOCAL_WRITE};
  if (ibv_modify_qp(me->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
    DIE("ibv_modify_qp to INIT failed");
  memset(&a, 0, sizeof a);
  a.qp_state = IBV_QPS_RTR;
  a.path_mtu = IBV_MTU_1024;
  a.dest_qp_num = peer->qp->qp_num;
  a.rq_psn = 0;
  a.max_dest_rd_atomic = 1;
  a.min_rnr_timer = 12;
  a.ah_attr.is_global = 1;
  a.ah_attr.grh.dgid = peer->gid;
  a.ah_attr.grh.sgid_index = me->gid_index;
  a.ah_attr.grh.hop_limit = 64;
  a.ah_attr.port_num = 1;
  if (ibv_modify_qp(me->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                                    IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
    DIE("ibv_modify_qp to RTR failed (the netdev needs an IPv4 address and a route to the peer)");
  memset(&a, 0, sizeof a);
  a.qp_state = IBV_QPS_RTS;
  a.sq_psn = 0;
  a.timeout = 14;
  a.retry_cnt = 7;
  a.rnr_retry = 6;
  a.max_rd_atomic = 1;
  if (ibv_modify_qp(me->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                                    IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
    DIE("ibv_modify_qp to RTS failed");
}

static void await_one(struct ibv_cq *cq, struct ibv_wc *wc, uint64_t wr_id) {
  for (long spin = 0; spin < POLL_SPIN_MAX; spin++) {
    int n = ibv_poll_cq(cq, POLL_BATCH, wc);
    if (n == 0) continue;
    if (n != 1 || wc[0].status != IBV_WC_SUCCESS || wc[0].wr_id != wr_id)
      DIE("round %lu: %d completions, status %s, wr_id %lu", (unsigned long)wr_id, n,
          ibv_wc_status_str(wc[0].status), (unsigned long)wc[0].wr_id);
    return;
  }
  DIE("round %lu: no completion after %ld polls", (unsigned long)wr_id, POLL_SPIN_MAX);
}

int main(int argc, char **argv) {
  if (argc < 5) DIE("usage: hot_loop DEVICE_A ADDRESS_A DEVICE_B ADDRESS_B [ROUNDS] [WARMUP]");
  long rounds = argc > 5 ? atol(argv[5]) : 20000, warmup = argc > 6 ? atol(argv[6]) : 5000;
  if (rounds < 1 || rounds > ROUNDS_MAX || warmup < 0 || warmup > ROUNDS_MAX)
    DIE("ROUNDS must be 1..%ld and WARMUP 0..%ld", ROUNDS_MAX, ROUNDS_MAX);
  struct ibv_context *ctx_a = open_device(argv[1]);
  struct ibv_context *ctx_b = strcmp(argv[1], argv[3]) ? open_device(argv[3]) : ctx_a;
  struct ibv_pd *pd_a = ibv_alloc_pd(ctx_a);
  struct ibv_pd *pd_b = ctx_b == ctx_a ? pd_a : ibv_alloc_pd(ctx_b);
  if (!pd_a || !pd_b) DIE("ibv_alloc_pd failed");
  struct side a, b;
  make_side(&a, ctx_a, pd_a, argv[2]);
  make_side(&b, ctx_b, pd_b, argv[4]);
  struct ibv_cq *empty = ibv_create_cq(ctx_a, 16, NULL, NULL, 0);
  if (!empty) DIE("ibv_create_cq failed");
  static uint8_t buffer[4096] __attribute__((aligned(4096)));
  static uint32_t source[MSG_BYTES / 4];
  struct ibv_mr *mr = ibv_reg_mr(pd_b, buffer, sizeof buffer, IBV_ACCESS_LOCAL_WRITE);
  if (!mr) DIE("ibv_reg_mr failed (locked memory limit? ulimit -l)");
  connect_qp(&a, &b);
  connect_qp(&b, &a);

  struct ibv_sge send_sge = {.addr = (uintptr_t)source, .length = MSG_BYTES, .lkey = 0};
  struct ibv_send_wr send = {.sg_list = &send_sge, .num_sge = 1, .opcode = IBV_WR_SEND,
                             .send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE};
  struct ibv_sge recv_sge = {.addr = (uintptr_t)buffer, .length = MSG_BYTES, .lkey = mr->lkey};
  struct ibv_recv_wr recv = {.sg_list = &recv_sge, .num_sge = 1};
  struct ibv_send_wr *bad_send;
  struct ibv_recv_wr *bad_recv;
  struct ibv_wc wc[POLL_BATCH];
  volatile uint32_t *word = (volatile uint32_t *)buffer;
  double t0 = 0;
  for (long i = 0; i < warmup + rounds; i++) {
    if (i == warmup) t0 = now_ns();
    recv.wr_id = i;
    if (ibv_post_recv(b.qp, &recv, &bad_recv)) DIE("round %ld: ibv_post_recv failed", i);
    source[0] = (uint32_t)i;
    send.wr_id = i;
    if (ibv_post_send(a.qp, &send, &bad_send)) DIE("round %ld: ibv_post_send failed", i);
    await_one(a.cq, wc, i);
    await_one(b.cq, wc, i);
    if (*word != (uint32_t)i) DIE("round %ld: received %u", i, *word);
  }
  double t1 = now_ns();
  long polls = rounds < EMPTY_POLLS_MAX ? rounds : EMPTY_POLLS_MAX;
  double t2 = now_ns();
  for (long i = 0; i < polls; i++)
    if (ibv_poll_cq(empty, POLL_BATCH, wc) != 0) DIE("the empty CQ had a completion");
  double t3 = now_ns();
  printf("{\"way\":\"c\",\"rounds\":%ld,\"nsPerRound\":%.1f,\"nsPerEmptyPoll\":%.1f}\n", rounds,
         (t1 - t0) / rounds, (t3 - t2) / polls);
  ibv_destroy_qp(a.qp);
  ibv_destroy_qp(b.qp);
  ibv_dereg_mr(mr);
  return 0;
}
