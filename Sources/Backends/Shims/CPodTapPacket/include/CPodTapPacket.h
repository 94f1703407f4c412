// What Swift's Glibc module does not import for AF_PACKET capture and network namespaces:
// <linux/if_packet.h>, <linux/filter.h>, setns(2), and acquire/release atomics for the ring's
// status words. Function-like macros become cpk_-prefixed functions.
#ifndef CPODTAP_PACKET_H
#define CPODTAP_PACKET_H

#include <stdint.h>
#include <sys/socket.h>
#include <net/if.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/filter.h>
#include <linux/sched.h>

/// setns(2); glibc declares it only under _GNU_SOURCE.
int cpk_setns(int fd, int nstype);

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

#endif
