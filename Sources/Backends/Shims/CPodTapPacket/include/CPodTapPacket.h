// What Swift's Glibc module does not import for AF_PACKET capture and network namespaces:
// <linux/if_packet.h>, <linux/filter.h>, setns(2), thread names, and acquire/release atomics for the ring's
// status words. Function-like macros become cpk_-prefixed functions.
#ifndef CPODTAP_PACKET_H
#define CPODTAP_PACKET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <net/if.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/filter.h>
#include <linux/sched.h>

/// setns(2); glibc declares it only under _GNU_SOURCE.
int cpk_setns(int fd, int nstype);
/// pthread_setname_np(pthread_self(), name), the name cut to the kernel's 15 bytes; glibc
/// declares it only under _GNU_SOURCE.
int cpk_set_thread_name(const char *name);

static inline uint32_t cpk_load_acquire_u32(const volatile void *p) {
    return __atomic_load_n((const volatile uint32_t *)p, __ATOMIC_ACQUIRE);
}
static inline void cpk_store_release_u32(volatile void *p, uint32_t v) {
    __atomic_store_n((volatile uint32_t *)p, v, __ATOMIC_RELEASE);
}
/// TPACKET_ALIGN(x).
static inline unsigned int cpk_tpacket_align(unsigned int x) { return TPACKET_ALIGN(x); }

_Static_assert(sizeof(struct tpacket_req3) == 28, "tpacket_req3 layout");
_Static_assert(sizeof(struct tpacket3_hdr) == 48, "tpacket3_hdr layout");
_Static_assert(sizeof(struct tpacket_block_desc) == 48, "tpacket_block_desc layout");
/* AFPacketSource reads the ring with these byte offsets (Swift cannot take key paths into the
   C unions). */
_Static_assert(offsetof(struct tpacket_block_desc, hdr.bh1.block_status) == 8, "block_status");
_Static_assert(offsetof(struct tpacket_block_desc, hdr.bh1.num_pkts) == 12, "num_pkts");
_Static_assert(offsetof(struct tpacket_block_desc, hdr.bh1.offset_to_first_pkt) == 16, "offset_to_first_pkt");
_Static_assert(offsetof(struct tpacket3_hdr, tp_next_offset) == 0, "tp_next_offset");
_Static_assert(offsetof(struct tpacket3_hdr, tp_sec) == 4, "tp_sec");
_Static_assert(offsetof(struct tpacket3_hdr, tp_nsec) == 8, "tp_nsec");
_Static_assert(offsetof(struct tpacket3_hdr, tp_snaplen) == 12, "tp_snaplen");
_Static_assert(offsetof(struct tpacket3_hdr, tp_len) == 16, "tp_len");
_Static_assert(offsetof(struct tpacket3_hdr, tp_status) == 20, "tp_status");
_Static_assert(offsetof(struct tpacket3_hdr, tp_mac) == 24, "tp_mac");
_Static_assert(offsetof(struct tpacket3_hdr, hv1.tp_vlan_tci) == 32, "tp_vlan_tci");
_Static_assert(offsetof(struct tpacket3_hdr, hv1.tp_vlan_tpid) == 36, "tp_vlan_tpid");
_Static_assert(offsetof(struct sockaddr_ll, sll_ifindex) == 4, "sll_ifindex");
_Static_assert(offsetof(struct sockaddr_ll, sll_hatype) == 8, "sll_hatype");
_Static_assert(offsetof(struct sockaddr_ll, sll_pkttype) == 10, "sll_pkttype");

#endif
