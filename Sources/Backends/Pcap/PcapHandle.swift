// The libpcap handle owner shared by the live and offline sources, and the pcap_dispatch
// callback that lends each packet to Swift without copying it.
internal import CaptureCore
internal import CPodTapPcap
// struct timeval is visible through several C modules; with MemberImportVisibility its fields
// resolve to whichever the module imports, so import the one the compiler picks.
internal import CPodTapNetlink
#if canImport(Glibc)
internal import Glibc
#endif

/// Owns one `pcap_t`; `pcap_close` in `deinit`.
@safe struct PcapHandle: ~Copyable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { unsafe self.pointer = pointer }

    deinit { unsafe pcap_close(pointer) }

    /// libpcap's message for the last failure on this handle (`pcap_geterr`).
    var lastError: String { unsafe String(cString: pcap_geterr(pointer)) }

    /// The handle's link-layer type as a LINKTYPE_ value.
    var linkType: LinkType { LinkType(dataLinkType: unsafe pcap_datalink(pointer)) }

    /// Calls `pcap_dispatch(count)`, lending each packet to `body` as a ``PacketRecord`` that
    /// points into libpcap's buffer (the mmapped ring for live captures).
    /// - Returns: `pcap_dispatch`'s result: packets processed, or a negative `PCAP_ERROR*`.
    func dispatch(
        count: Int32, linkType: LinkType, nanosecondsPerUnit: UInt64, interfaceIndex: Int,
        _ body: (borrowing PacketRecord) -> Void
    ) -> Int32 {
        // A C callback cannot capture context: it reaches the closure through `user`.
        withoutActuallyEscaping(body) { body in
            var context = PcapDispatchContext(body: body, linkType: linkType,
                                              nanosecondsPerUnit: nanosecondsPerUnit, interfaceIndex: interfaceIndex)
            return unsafe withUnsafeMutablePointer(to: &context) { context in
                let user = unsafe UnsafeMutableRawPointer(context).assumingMemoryBound(to: UInt8.self)
                return unsafe pcap_dispatch(pointer, count, { user, header, bytes in
                    guard let user = unsafe user, let header = unsafe header else { return }
                    let context = unsafe UnsafeMutableRawPointer(user).assumingMemoryBound(to: PcapDispatchContext.self)
                    let length = Int(unsafe header.pointee.caplen)
                    let buffer = unsafe UnsafeRawBufferPointer(start: bytes, count: bytes == nil ? 0 : length)
                    let span = unsafe RawSpan(_unsafeBytes: buffer)
                    let ts = unsafe header.pointee.ts
                    let record = PacketRecord(
                        bytes: span, originalLength: Int(unsafe header.pointee.len),
                        timestamp: Timestamp(nanoseconds: unsafe PcapHandle.nanoseconds(
                            seconds: Int64(ts.tv_sec), fraction: Int64(ts.tv_usec),
                            perUnit: context.pointee.nanosecondsPerUnit)),
                        linkType: unsafe context.pointee.linkType,
                        interfaceIndex: unsafe context.pointee.interfaceIndex)
                    unsafe context.pointee.body(record)
                }, user)
            }
        }
    }

    /// A `struct timeval` from libpcap as nanoseconds. libpcap reads a capture file's 32-bit
    /// seconds and fraction as signed values; like ``CaptureFileReader`` they are unsigned here.
    @inline(__always)
    static func nanoseconds(seconds: Int64, fraction: Int64, perUnit: UInt64) -> UInt64 {
        let s = seconds >= 0 ? UInt64(seconds) : UInt64(UInt32(truncatingIfNeeded: seconds))
        let f = fraction >= 0 ? UInt64(fraction) : UInt64(UInt32(truncatingIfNeeded: fraction))
        return s &* 1_000_000_000 &+ f &* perUnit
    }

    /// Compiles a tcpdump filter expression for this handle's link type and installs it
    /// (in the kernel for live captures).
    /// - Throws: ``CaptureSourceError/Code/invalidFilter`` naming the expression and libpcap's reason.
    func setFilter(_ expression: String, interface: String) throws(CaptureSourceError) {
        var program = unsafe bpf_program()
        guard unsafe pcap_compile(pointer, &program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            throw CaptureSourceError(.invalidFilter, operation: "pcap_compile",
                                     message: "invalid filter expression '\(expression)': \(lastError)")
        }
        defer { unsafe pcap_freecode(&program) }
        guard unsafe pcap_setfilter(pointer, &program) == 0 else {
            throw CaptureSourceError(.invalidFilter, operation: "pcap_setfilter",
                                     message: "cannot install filter '\(expression)' on \(interface): \(lastError)")
        }
    }
}

/// What the C callback needs; lives on the stack of ``PcapHandle/dispatch(count:linkType:nanosecondsPerUnit:interfaceIndex:_:)``.
struct PcapDispatchContext {
    let body: (borrowing PacketRecord) -> Void
    let linkType: LinkType
    let nanosecondsPerUnit: UInt64
    let interfaceIndex: Int
}

extension LinkType {
    /// The LINKTYPE_ value for a libpcap DLT_ value (`pcap_datalink`). They are equal except
    /// for a few DLT_ values below 104 that differ between platforms; libpcap maps those to
    /// the LINKTYPE_ values in files, and this maps them back.
    init(dataLinkType dlt: Int32) {
        switch dlt {
        case 11: self.init(rawValue: 100)  // DLT_ATM_RFC1483
        case 12, 14: self = .raw           // DLT_RAW (12 on Linux, 14 on OpenBSD)
        case 15: self.init(rawValue: 102)  // DLT_SLIP_BSDOS
        case 16: self.init(rawValue: 103)  // DLT_PPP_BSDOS
        default: self.init(rawValue: UInt32(truncatingIfNeeded: dlt))
        }
    }
}

/// A `PCAP_ERRBUF_SIZE` buffer for the libpcap calls that report into one.
func withPcapErrorBuffer<R>(_ body: (UnsafeMutablePointer<CChar>) -> R) -> (R, String) {
    unsafe withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(PCAP_ERRBUF_SIZE)) { buffer in
        let base = buffer.baseAddress!
        unsafe base[0] = 0
        let result = unsafe body(base)
        return (result, unsafe String(cString: base))
    }
}
