/*
 * flows-live.c - a C yardstick for live decode + track: the ring loop of
 * ../shared/bench/limit/tpv3.c feeding the parse and the flow table of
 * ../shared/bench/limit/flows.c (included, not copied: its key, hash_key, table and counters),
 * with a look-ahead: each frame is parsed and its table bucket requested LOOKAHEAD frames
 * before it is counted. What compare-live.sh's "flows-live" capturer runs, beside tpv3 (capture
 * alone) and PodTap (capture, decode, track).
 *
 * It does less per packet than PodTap: Ethernet / 802.1Q / IPv4 / IPv6 (extension headers) /
 * TCP / UDP ports, VXLAN inner flows; per direction packets, IP bytes and OR of TCP flags,
 * first and last time. No TCP state, RTT, retransmissions, DNS, TLS, timeouts or events, and
 * a table that is never emptied (2^18 places for at most 2^17 flows, preallocated).
 *
 * build: cc -O2 -DFLOWS_C='"…/bench/limit/flows.c"' -o flows-live flows-live.c
 * usage: flows-live -i IFACE [-t SECONDS] [-l]   (-l: no look-ahead, flows.c's packet() as is)
 * Prints "flows-live ready" on stderr once bound, and at the end
 * "flows-live seen=N flows=F nonip=X kernel_packets=K kernel_drops=D".
 */
#define main flows_c_main /* flows.c's own main (pcap files) is not used */
#include FLOWS_C
#undef main
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#define LOOKAHEAD 8

static volatile sig_atomic_t stop_;
static void on_signal(int s) { (void)s; stop_ = 1; }

static double monotonic(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* flows.c's packet() split in two: parse() finds the key and requests its bucket, count()
 * updates the flow. Same parse, same key normalisation, same counters. */
typedef struct {
    key_t_ k;
    uint64_t hash, us;
    uint32_t iplen;
    uint8_t dir, flags, ok;
} parsed_t;

static inline void parse(const uint8_t *p, uint32_t len, uint64_t us, parsed_t *o) {
    o->ok = 0;
    for (int depth = 0; depth < 2; depth++) {
        if (len < 14) return;
        uint16_t et = rd16(p + 12);
        uint32_t off = 14;
        while ((et == 0x8100 || et == 0x88a8) && off + 4 <= len) { et = rd16(p + off + 2); off += 4; }
        key_t_ *k = &o->k;
        memset(k, 0, sizeof *k);
        uint32_t iplen, l4;
        uint8_t proto;
        if (et == 0x0800) {
            if (off + 20 > len) return;
            const uint8_t *ip = p + off;
            iplen = rd16(ip + 2);
            proto = ip[9];
            l4 = off + (ip[0] & 15) * 4u;
            if (rd16(ip + 6) & 0x1fff) l4 = len; /* non-first fragment: no ports */
            k->ipver = 4;
            memcpy(k->a, ip + 12, 4);
            memcpy(k->b, ip + 16, 4);
        } else if (et == 0x86dd) {
            if (off + 40 > len) return;
            const uint8_t *ip = p + off;
            iplen = 40u + rd16(ip + 4);
            proto = ip[6];
            l4 = off + 40;
            while ((proto == 0 || proto == 43 || proto == 60 || proto == 44) && l4 + 8 <= len) {
                uint8_t nh = p[l4];
                uint32_t el = proto == 44 ? 8 : (p[l4 + 1] + 1u) * 8;
                proto = nh;
                l4 += el;
            }
            k->ipver = 6;
            memcpy(k->a, ip + 8, 16);
            memcpy(k->b, ip + 24, 16);
        } else {
            return;
        }
        k->proto = proto;
        uint16_t sp = 0, dp = 0;
        uint8_t tf = 0;
        if ((proto == 6 || proto == 17) && l4 + 4 <= len) {
            sp = rd16(p + l4);
            dp = rd16(p + l4 + 2);
            if (proto == 6 && l4 + 14 <= len) tf = p[l4 + 13];
            if (proto == 17 && decap && depth == 0 && (dp == 8472 || dp == 4789) && l4 + 16 <= len) {
                p += l4 + 16; /* the inner frame, as flows.c's recursion */
                len -= l4 + 16;
                continue;
            }
        }
        k->pa = sp;
        k->pb = dp;
        uint8_t dir = 0;
        int c = memcmp(k->a, k->b, 16);
        if (c > 0 || (c == 0 && sp > dp)) {
            uint8_t t[16];
            memcpy(t, k->a, 16); memcpy(k->a, k->b, 16); memcpy(k->b, t, 16);
            k->pa = dp; k->pb = sp;
            dir = 1;
        }
        o->hash = hash_key(k);
        o->dir = dir;
        o->iplen = iplen;
        o->flags = tf;
        o->us = us;
        o->ok = 1;
        __builtin_prefetch(&T[o->hash & (TCAP - 1)]);
        return;
    }
}

static inline void count(const parsed_t *o) {
    if (!o->ok) { nonip++; return; }
    uint64_t j = o->hash & (TCAP - 1);
    flow_t *f;
    for (;;) {
        f = &T[j];
        if (!f->hash) { f->hash = o->hash; f->k = o->k; TN++; break; }
        if (f->hash == o->hash && !memcmp(&f->k, &o->k, 40)) break;
        j = (j + 1) & (TCAP - 1);
    }
    f->pkts[o->dir]++;
    f->bytes[o->dir] += o->iplen;
    f->tcpflags[o->dir] |= o->flags;
    if (!f->first_us) f->first_us = o->us;
    f->last_us = o->us;
}

int main(int argc, char **argv) {
    const char *ifname = NULL;
    double secs = 10;
    int plain = 0, c;
    while ((c = getopt(argc, argv, "i:t:l")) != -1) {
        switch (c) {
        case 'i': ifname = optarg; break;
        case 't': secs = atof(optarg); break;
        case 'l': plain = 1; break;
        default: goto usage;
        }
    }
    if (!ifname) {
    usage:
        fprintf(stderr, "usage: flows-live -i IFACE [-t SECONDS] [-l]\n");
        return 2;
    }
    /* Preallocated for 2^17 flows: count() never grows the table, and the loop stops after the
     * block in which the 2^17th flow appeared. With -l, flows.c's lookup() grows it then (an
     * allocation while capturing) and the capture goes on. */
    while (TCAP < (1u << 18)) grow();
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) { perror("socket"); return 1; }
    int v = TPACKET_V3;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0) { perror("PACKET_VERSION"); return 1; }
    struct tpacket_req3 req; /* tpv3.c's ring */
    memset(&req, 0, sizeof req);
    req.tp_block_size = 4096 * 1024;
    req.tp_block_nr = 64;
    req.tp_frame_size = 2048;
    req.tp_frame_nr = req.tp_block_size / req.tp_frame_size * req.tp_block_nr;
    req.tp_retire_blk_tov = 10;
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) { perror("PACKET_RX_RING"); return 1; }
    size_t ringsz = (size_t)req.tp_block_size * req.tp_block_nr;
    uint8_t *ring = mmap(NULL, ringsz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ring == MAP_FAILED) { perror("mmap"); return 1; }
    struct sockaddr_ll ll;
    memset(&ll, 0, sizeof ll);
    ll.sll_family = AF_PACKET;
    ll.sll_protocol = htons(ETH_P_ALL);
    ll.sll_ifindex = (int)if_nametoindex(ifname);
    if (!ll.sll_ifindex) { perror(ifname); return 1; }
    if (bind(fd, (struct sockaddr *)&ll, sizeof ll) < 0) { perror("bind"); return 1; }
    struct tpacket_stats_v3 st;
    socklen_t sl = sizeof st;
    getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl); /* resets the kernel's counters */
    fprintf(stderr, "flows-live ready on %s (%s)\n", ifname, plain ? "no look-ahead" : "look-ahead 8");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    uint64_t seen = 0;
    unsigned bi = 0;
    parsed_t ahead[LOOKAHEAD];
    double end = monotonic() + secs;
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLERR};
    while (!stop_) {
        struct tpacket_block_desc *bd = (struct tpacket_block_desc *)(ring + (size_t)bi * req.tp_block_size);
        if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
            if (monotonic() >= end) break;
            poll(&pfd, 1, 50);
            continue;
        }
        uint32_t n = bd->hdr.bh1.num_pkts;
        struct tpacket3_hdr *h = (struct tpacket3_hdr *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
        if (plain) {
            for (uint32_t i = 0; i < n; i++) {
                packet((uint8_t *)h + h->tp_mac, h->tp_snaplen, (uint64_t)h->tp_sec * 1000000u + h->tp_nsec / 1000, 0);
                h = (struct tpacket3_hdr *)((uint8_t *)h + h->tp_next_offset);
            }
        } else {
            /* frame i is parsed at step i and counted at step i + LOOKAHEAD (same slot) */
            for (uint32_t i = 0; i < n + LOOKAHEAD; i++) {
                if (i >= LOOKAHEAD) count(&ahead[i % LOOKAHEAD]);
                if (i < n) {
                    parse((uint8_t *)h + h->tp_mac, h->tp_snaplen, (uint64_t)h->tp_sec * 1000000u + h->tp_nsec / 1000,
                          &ahead[i % LOOKAHEAD]);
                    h = (struct tpacket3_hdr *)((uint8_t *)h + h->tp_next_offset);
                }
            }
        }
        seen += n;
        __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        bi = (bi + 1) % req.tp_block_nr;
        if (TN * 2 >= TCAP) { fprintf(stderr, "flows-live: table full (%llu flows)\n", (unsigned long long)TN); break; }
    }
    sl = sizeof st;
    getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl);
    printf("flows-live seen=%llu flows=%llu nonip=%llu kernel_packets=%u kernel_drops=%u\n", (unsigned long long)seen,
           (unsigned long long)TN, (unsigned long long)nonip, st.tp_packets, st.tp_drops);
    munmap(ring, ringsz);
    close(fd);
    return 0;
}
