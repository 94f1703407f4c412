// libpcap for PcapLiveSource, libpcap offline reading, and compiling tcpdump filter syntax to
// classic BPF for AF_PACKET sockets (pcap_open_dead + pcap_compile, no capture handle).
// libpcap's <pcap/bpf.h> defines struct bpf_insn, as libbpf's <linux/bpf.h> does: never import
// this module and an eBPF shim into the same Swift module.
#ifndef CPODTAP_PCAP_H
#define CPODTAP_PCAP_H
#include <pcap/pcap.h>
#endif
