// rtnetlink through libnl-3 route, for InterfaceWatcher: sockets opened inside a network
// namespace, link and address dumps, RTM_GETNSID, and the namespace files to search.
// Everything here runs on one thread at a time; nothing here is public.
internal import CaptureCore
internal import CPodTapNetlink
internal import CPodTapPacket
#if canImport(Glibc)
internal import Glibc
#endif

enum RouteNetlink {
    /// `IFF_UP` (linux/if.h): the link is administratively up.
    static let interfaceUp: UInt32 = 0x1
    /// `IFF_LOOPBACK`.
    static let interfaceLoopback: UInt32 = 0x8
    /// `IFF_LOWER_UP`: the driver signals carrier (for a veth: its peer is up).
    static let interfaceLowerUp: UInt32 = 0x1_0000

    // MARK: Sockets

    /// A libnl route socket (`struct nl_sock`, NETLINK_ROUTE), connected; closed on deinit.
    @safe struct Socket: ~Copyable {
        let handle: OpaquePointer
        private let owned: Bool

        /// Uses a socket someone else owns and frees.
        init(borrowing handle: OpaquePointer) {
            unsafe self.handle = handle
            owned = false
        }

        /// Opens a socket in the calling thread's current network namespace.
        init() throws(CaptureSourceError) {
            guard let sk = unsafe nl_socket_alloc() else {
                throw CaptureSourceError(.system, operation: "nl_socket_alloc", message: "libnl could not allocate a socket; the process is out of memory.")
            }
            let rc = unsafe nl_connect(sk, NETLINK_ROUTE)
            guard rc == 0 else {
                unsafe nl_socket_free(sk)
                throw RouteNetlink.error(rc, operation: "nl_connect(NETLINK_ROUTE)")
            }
            unsafe handle = sk
            owned = true
        }

        /// Opens a socket inside the network namespace `namespaceFD` (the file at `path`) refers
        /// to: the calling thread enters it, opens the socket and returns to its own namespace.
        /// The socket stays in the namespace it was opened in.
        init(inNamespace namespaceFD: Int32, path: String) throws(CaptureSourceError) {
            self = try NetworkNamespace.onCallingThread(in: namespaceFD, path: path) {
                () throws(CaptureSourceError) -> Socket in try Socket()
            }
        }

        deinit { if owned { unsafe nl_socket_free(handle) } }

        var fileDescriptor: Int32 { unsafe nl_socket_get_fd(handle) }

        /// Every link in the socket's namespace (RTM_GETLINK dump).
        func links() throws(CaptureSourceError) -> [Link] {
            var cache: OpaquePointer? = nil
            let rc = unsafe rtnl_link_alloc_cache(handle, AF_UNSPEC, &cache)
            guard rc == 0, let cache = unsafe cache else { throw RouteNetlink.error(rc, operation: "rtnl_link_alloc_cache") }
            defer { unsafe nl_cache_free(cache) }
            var result: [Link] = []
            var object = unsafe nl_cache_get_first(cache)
            while let link = unsafe object {
                result.append(unsafe Link(link))
                unsafe object = unsafe nl_cache_get_next(link)
            }
            return result
        }

        /// The addresses of interface `index` in the socket's namespace (RTM_GETADDR dump), IPv4
        /// then IPv6, in the kernel's order.
        func addresses(ofInterface index: Int32) throws(CaptureSourceError) -> [PodInterface.Address] {
            var cache: OpaquePointer? = nil
            let rc = unsafe rtnl_addr_alloc_cache(handle, &cache)
            guard rc == 0, let cache = unsafe cache else { throw RouteNetlink.error(rc, operation: "rtnl_addr_alloc_cache") }
            defer { unsafe nl_cache_free(cache) }
            var result: [PodInterface.Address] = []
            var object = unsafe nl_cache_get_first(cache)
            while let addr = unsafe object {
                unsafe object = unsafe nl_cache_get_next(addr)
                guard unsafe rtnl_addr_get_ifindex(addr) == index,
                    let address = unsafe RouteNetlink.address(rtnl_addr_get_local(addr))
                else { continue }
                let prefix = UInt8(clamping: unsafe rtnl_addr_get_prefixlen(addr))
                result.append(PodInterface.Address(address, prefixLength: prefix))
            }
            return result.filter { $0.address.isIPv4 } + result.filter { !$0.address.isIPv4 }
        }

        /// The id this socket's namespace gives the namespace `namespaceFD` refers to
        /// (RTM_GETNSID with NETNSA_FD), nil when it has none. The id is what IFLA_LINK_NETNSID
        /// carries for a link whose peer lives there.
        func namespaceID(of namespaceFD: Int32) throws(CaptureSourceError) -> Int32? {
            guard let msg = unsafe nlmsg_alloc_simple(Int32(RTM_GETNSID), NLM_F_REQUEST) else {
                throw CaptureSourceError(.system, operation: "nlmsg_alloc_simple", message: "libnl could not allocate a message; the process is out of memory.")
            }
            defer { unsafe nlmsg_free(msg) }
            var family = rtgenmsg(rtgen_family: UInt8(AF_UNSPEC))
            guard unsafe nlmsg_append(msg, &family, MemoryLayout<rtgenmsg>.size, Int32(NLMSG_ALIGNTO)) == 0,
                unsafe nla_put_u32(msg, Int32(NETNSA_FD), UInt32(bitPattern: namespaceFD)) == 0
            else {
                throw CaptureSourceError(.system, operation: "RTM_GETNSID", message: "could not build the netlink request.")
            }
            let sent = unsafe nl_send_auto(handle, msg)
            guard sent >= 0 else { throw RouteNetlink.error(sent, operation: "nl_send_auto(RTM_GETNSID)") }
            let sequence = unsafe nlmsg_hdr(msg).pointee.nlmsg_seq
            // The reply is one datagram; a stale one (other sequence) is skipped.
            for _ in 0..<4 {
                var peer = sockaddr_nl()
                var buffer: UnsafeMutablePointer<UInt8>? = nil
                let n = unsafe nl_recv(handle, &peer, &buffer, nil)
                defer { unsafe free(buffer) }
                guard n > 0, let buffer = unsafe buffer else { throw RouteNetlink.error(n, operation: "nl_recv(RTM_NEWNSID)") }
                var remaining = n
                var header = unsafe UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: nlmsghdr.self)
                while unsafe nlmsg_ok(header, remaining) != 0 {
                    defer { unsafe header = unsafe nlmsg_next(header, &remaining) }
                    guard unsafe header.pointee.nlmsg_seq == sequence else { continue }
                    let type = unsafe Int32(header.pointee.nlmsg_type)
                    if type == NLMSG_ERROR {
                        let code = unsafe nlmsg_data(header).assumingMemoryBound(to: nlmsgerr.self).pointee.error
                        throw CaptureSourceError(.namespace, operation: "RTM_GETNSID", errno: -code,
                                                 message: "the kernel refused to name the namespace.")
                    }
                    guard type == Int32(RTM_NEWNSID) else { continue }
                    var attributes = unsafe [UnsafeMutablePointer<nlattr>?](repeating: nil, count: 8)
                    let parsed = unsafe attributes.withUnsafeMutableBufferPointer {
                        unsafe nlmsg_parse(header, Int32(MemoryLayout<rtgenmsg>.size), $0.baseAddress, 7, nil)
                    }
                    guard parsed == 0, let id = unsafe attributes[Int(NETNSA_NSID)] else { return nil }
                    let value = unsafe nla_get_s32(id)
                    return value < 0 ? nil : value
                }
            }
            return nil
        }
    }

    // MARK: Links

    /// One link as a dump or an event describes it (libnl's `rtnl_link`, copied out).
    struct Link: Sendable, Hashable {
        var index: Int32
        var name: String
        var flags: UInt32
        /// IFLA_INFO_KIND: "veth", "bridge", …; nil when the kernel gives none.
        var kind: String?
        /// IFLA_LINK when it names another link (a veth's peer; in the peer's namespace when
        /// ``peerNamespaceID`` is set).
        var peerIndex: Int32?
        /// IFLA_LINK_NETNSID: the peer's namespace as this namespace numbers it.
        var peerNamespaceID: Int32?
        /// IFLA_MASTER: the bridge or bond this link is enslaved to.
        var masterIndex: Int32?

        init(_ link: OpaquePointer) {
            index = unsafe rtnl_link_get_ifindex(link)
            name = unsafe rtnl_link_get_name(link).map { unsafe String(cString: $0) } ?? ""
            flags = unsafe rtnl_link_get_flags(link)
            kind = unsafe rtnl_link_get_type(link).map { unsafe String(cString: $0) }
            let peer = unsafe rtnl_link_get_link(link)
            peerIndex = peer > 0 && peer != index ? peer : nil
            var nsid: Int32 = -1
            peerNamespaceID = unsafe rtnl_link_get_link_netnsid(link, &nsid) == 0 && nsid >= 0 ? nsid : nil
            let master = unsafe rtnl_link_get_master(link)
            masterIndex = master > 0 ? master : nil
        }
    }

    // MARK: Addresses

    /// An IPv4 or IPv6 libnl `nl_addr` (route or conntrack) as an ``IPAddress``; nil for
    /// other families and lengths.
    static func address(_ a: OpaquePointer?) -> IPAddress? {
        guard let a = unsafe a, let bytes = unsafe nl_addr_get_binary_addr(a) else { return nil }
        switch (Int32(unsafe nl_addr_get_family(a)), unsafe nl_addr_get_len(a)) {
        case (AF_INET, 4):
            return IPAddress(ipv4: UInt32(bigEndian: unsafe bytes.loadUnaligned(as: UInt32.self)))
        case (AF_INET6, 16):
            return IPAddress(high: UInt64(bigEndian: unsafe bytes.loadUnaligned(as: UInt64.self)),
                             low: UInt64(bigEndian: unsafe bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        default:
            return nil
        }
    }

    // MARK: Namespaces

    /// The (device, inode) pair naming a namespace file's namespace; nil when it cannot be read.
    static func namespaceIdentity(_ path: String) -> NamespaceIdentity? {
        var st = stat()
        guard unsafe stat(path, &st) == 0 else { return nil }
        return NamespaceIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    static func namespaceIdentity(fd: Int32) -> NamespaceIdentity? {
        var st = stat()
        guard unsafe fstat(fd, &st) == 0 else { return nil }
        return NamespaceIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    struct NamespaceIdentity: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64
    }

    /// Namespace bind mounts: `/run/netns/*` (ip netns, CNI runtimes such as containerd's
    /// `cni-…`).
    static func boundNamespaceFiles() -> [String] {
        directoryEntries("/run/netns").map { "/run/netns/" + $0 }
    }

    /// `/proc/PID/ns/net` of every process (Docker and CRI-O pods without a bind mount).
    static func processNamespaceFiles() -> [String] {
        directoryEntries("/proc").filter { $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }.map { "/proc/\($0)/ns/net" }
    }

    static func directoryEntries(_ path: String) -> [String] {
        guard let dir = unsafe opendir(path) else { return [] }
        defer { unsafe closedir(dir) }
        var names: [String] = []
        while let entry = unsafe readdir(dir) {
            let name = unsafe withUnsafePointer(to: &entry.pointee.d_name) {
                unsafe String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    static func error(_ code: Int32, operation: String) -> CaptureSourceError {
        let text = unsafe nl_geterror(code).map { unsafe String(cString: $0) } ?? "error \(code)"
        let permission = -code == NLE_PERM
        return CaptureSourceError(permission ? .permissionDenied : .system, operation: operation,
                                  message: permission ? "netlink refused the request (\(text)); run as root or with CAP_NET_ADMIN."
                                      : "netlink failed: \(text).")
    }
}

