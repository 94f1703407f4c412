// libnl-3: route (links, addresses, link events) and netfilter (conntrack).
#ifndef CPODTAP_NETLINK_H
#define CPODTAP_NETLINK_H
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/addr.h>
#include <linux/net_namespace.h>
#include <netlink/netfilter/ct.h>
#include <netlink/netfilter/nfnl.h>
#endif
