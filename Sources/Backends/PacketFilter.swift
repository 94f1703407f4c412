// tcpdump filter syntax compiled to classic BPF by libpcap's compiler, without a capture
// handle: pcap_open_dead + pcap_compile. AF_PACKET sockets attach the program with
// SO_ATTACH_FILTER; the libpcap live source hands it to pcap_setfilter.
public import CaptureCore
internal import CPodTapPcap
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// A filter expression in tcpdump syntax ("tcp port 80 and not host 10.0.0.1"), compiled to a
/// classic BPF program.
///
/// Compiling needs no privilege and no interface: libpcap's compiler runs against a "dead"
/// handle of the given link type. The program is a plain value; attach it to as many sockets
/// as needed.
///
/// When the expression does not compile, the error names the expression and the byte offset
/// where it fails. libpcap reports only "syntax error", so the offset is found by compiling
/// growing prefixes, token by token: a prefix is *viable* when it, or it followed by one of a
/// few short completions (" 1", " host 1", " port 1", " ] = 1", closing parentheses …),
/// compiles. The reported offset is the start of the first token after which the prefix is no
/// longer viable, or the end of the expression when every prefix is (the expression is
/// incomplete, like "port" or "tcp and ("). Prefixes are compiled without the optimiser, whose
/// "expression rejects all packets" concerns the whole program; such an expression is reported
/// at offset 0.
public struct PacketFilter: Sendable, Hashable {
    /// One classic BPF instruction (the layout of `struct sock_filter` and `struct bpf_insn`).
    public struct Instruction: Sendable, Hashable {
        public var code: UInt16
        public var jumpIfTrue: UInt8
        public var jumpIfFalse: UInt8
        public var k: UInt32
        public init(code: UInt16, jumpIfTrue: UInt8, jumpIfFalse: UInt8, k: UInt32) {
            self.code = code
            self.jumpIfTrue = jumpIfTrue
            self.jumpIfFalse = jumpIfFalse
            self.k = k
        }
    }

    /// The expression as given.
    public let expression: String
    /// The link type the program expects frames in.
    public let linkType: LinkType
    /// Bytes the program keeps of an accepted packet (its return value).
    public let snapLength: Int
    /// The compiled program.
    public let instructions: [Instruction]

    /// Compiles `expression` for frames of `linkType`.
    /// - Parameters:
    ///   - expression: tcpdump filter syntax; an empty expression accepts everything.
    ///   - linkType: the frames' link type; AF_PACKET raw sockets deliver ``LinkType/ethernet``.
    ///   - snapLength: bytes kept of each accepted packet, 1...262144.
    ///   - optimize: run libpcap's optimiser (as tcpdump does unless `-O`).
    /// - Throws: ``CaptureSourceError`` with code `.invalidFilter`, whose message contains the
    ///   expression, the byte offset where it fails and libpcap's reason.
    public init(expression: String, linkType: LinkType = .ethernet, snapLength: Int = 262_144,
                optimize: Bool = true) throws(CaptureSourceError) {
        guard (1...262_144).contains(snapLength) else {
            throw CaptureSourceError(.invalidConfiguration, operation: "pcap_compile",
                                     message: "snap length \(snapLength) is outside 1...262144")
        }
        self.expression = expression
        self.linkType = linkType
        self.snapLength = snapLength
        switch Self.compile(expression, linkType: linkType, snapLength: snapLength, optimize: optimize) {
        case .success(let program):
            instructions = program
        case .failure(let reason):
            let offset = Self.failureOffset(of: expression, linkType: linkType, snapLength: snapLength)
            let length = expression.utf8.count
            let token = Self.token(in: expression, at: offset)
            let place = offset >= length
                ? "at offset \(offset) (the end: the expression is incomplete)"
                : "at offset \(offset) (\"\(token)\")"
            throw CaptureSourceError(
                .invalidFilter, operation: "pcap_compile",
                message: "filter \"\(expression)\" does not compile \(place): \(reason)")
        }
    }

    /// A program that accepts every packet and keeps `snapLength` bytes of it.
    public init(acceptingAllWithSnapLength snapLength: Int, linkType: LinkType = .ethernet) {
        expression = ""
        self.linkType = linkType
        self.snapLength = snapLength
        // BPF_RET | BPF_K
        instructions = [Instruction(code: 0x06, jumpIfTrue: 0, jumpIfFalse: 0, k: UInt32(clamping: snapLength))]
    }

    /// A program that rejects every packet.
    static var rejectingAll: PacketFilter {
        PacketFilter(expression: "", linkType: .ethernet, snapLength: 1,
                     instructions: [Instruction(code: 0x06, jumpIfTrue: 0, jumpIfFalse: 0, k: 0)])
    }

    /// Lends the program as libpcap's `struct bpf_program` (for `pcap_setfilter`).
    func withPcapProgram<R>(_ body: (UnsafeMutablePointer<bpf_program>) -> R) -> R {
        var insns = instructions.map { bpf_insn(code: $0.code, jt: $0.jumpIfTrue, jf: $0.jumpIfFalse, k: $0.k) }
        return unsafe insns.withUnsafeMutableBufferPointer { buffer in
            var program = unsafe bpf_program(bf_len: UInt32(buffer.count), bf_insns: buffer.baseAddress)
            return unsafe body(&program)
        }
    }

    private init(expression: String, linkType: LinkType, snapLength: Int, instructions: [Instruction]) {
        self.expression = expression
        self.linkType = linkType
        self.snapLength = snapLength
        self.instructions = instructions
    }

    // MARK: - Compiling

    /// Serialises every use of libpcap's compiler (its scanner and optimiser have shared state
    /// in older releases; compiling is rare and cheap).
    private static let compilerLock = Mutex(())

    /// libpcap's DLT_ number for a LINKTYPE_ value (they differ only for a few old types).
    static func dataLinkType(_ linkType: LinkType) -> Int32 {
        switch linkType.rawValue {
        case 101: 12  // LINKTYPE_RAW → DLT_RAW (12 on Linux)
        default: Int32(truncatingIfNeeded: linkType.rawValue)
        }
    }

    /// Compiles with libpcap; the program, or libpcap's error text.
    static func compile(_ expression: String, linkType: LinkType, snapLength: Int,
                        optimize: Bool) -> Result<[Instruction], CompileFailure> {
        compilerLock.withLock { _ in
            guard let handle = unsafe pcap_open_dead(dataLinkType(linkType), Int32(snapLength)) else {
                return .failure(CompileFailure(text: "pcap_open_dead failed (out of memory?)"))
            }
            defer { unsafe pcap_close(handle) }
            var program = unsafe bpf_program()
            // PCAP_NETMASK_UNKNOWN: "ip broadcast" is then an error, everything else works.
            let rc = unsafe pcap_compile(handle, &program, expression, optimize ? 1 : 0, 0xffff_ffff)
            guard rc == 0 else {
                return .failure(CompileFailure(text: unsafe String(cString: pcap_geterr(handle))))
            }
            defer { unsafe pcap_freecode(&program) }
            let count = Int(unsafe program.bf_len)
            var result: [Instruction] = []
            result.reserveCapacity(count)
            for i in 0..<count {
                let insn = unsafe program.bf_insns[i]
                result.append(Instruction(code: insn.code, jumpIfTrue: insn.jt, jumpIfFalse: insn.jf, k: insn.k))
            }
            return .success(result)
        }
    }

    struct CompileFailure: Error, CustomStringConvertible {
        var text: String
        var description: String { text }
    }

    // MARK: - Where an expression fails

    /// Completions tried after a prefix: one of them compiling proves the prefix viable.
    private static let completions = [
        "", " 1", " host 1", " port 1", " net 1", " tcp", " 1 ]", " ] = 1", " 1 ] = 1", " = 1",
        " 1 = 1", " 1:2:3:4:5:6", " host 1:2:3:4:5:6", " ::1", " 1-2",
    ]

    /// The byte offset where `expression` stops being a viable prefix (see the type's
    /// documentation); the expression's length when every prefix is viable.
    static func failureOffset(of expression: String, linkType: LinkType, snapLength: Int) -> Int {
        let bytes = Array(expression.utf8)
        for token in tokens(bytes) {
            let prefix = String(decoding: bytes[..<token.upperBound], as: UTF8.self)
            if !isViable(prefix, linkType: linkType, snapLength: snapLength) { return token.lowerBound }
        }
        // Every prefix, the whole expression included, is viable: incomplete, or rejected only
        // by the optimiser ("expression rejects all packets").
        if case .success = compile(expression, linkType: linkType, snapLength: snapLength, optimize: false) {
            return 0
        }
        return bytes.count
    }

    private static func isViable(_ prefix: String, linkType: LinkType, snapLength: Int) -> Bool {
        for completion in completions {
            var candidate = prefix + completion
            var depth = 0
            for c in candidate.utf8 {
                if c == UInt8(ascii: "(") { depth += 1 } else if c == UInt8(ascii: ")") { depth -= 1 }
            }
            if depth > 0 { candidate += String(repeating: " )", count: depth) }
            if case .success = compile(candidate, linkType: linkType, snapLength: snapLength, optimize: false) {
                return true
            }
        }
        return false
    }

    /// Token boundaries close to libpcap's scanner: brackets and parentheses alone, runs of
    /// operator characters, and runs of everything else (names, numbers, addresses with
    /// `.`, `:` and `-`), separated by white space.
    static func tokens(_ bytes: [UInt8]) -> [Range<Int>] {
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (0x09...0x0d).contains(c) }
        func isBracket(_ c: UInt8) -> Bool { c == 0x28 || c == 0x29 || c == 0x5b || c == 0x5d }
        func isOperator(_ c: UInt8) -> Bool { Array("!=<>&|+*/%^".utf8).contains(c) }
        var result: [Range<Int>] = []
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if isSpace(c) { i += 1; continue }
            let start = i
            if isBracket(c) {
                i += 1
            } else if isOperator(c) {
                while i < bytes.count, isOperator(bytes[i]) { i += 1 }
            } else {
                while i < bytes.count, !isSpace(bytes[i]), !isBracket(bytes[i]), !isOperator(bytes[i]) { i += 1 }
            }
            result.append(start..<i)
        }
        return result
    }

    /// The token starting at `offset`, for error messages.
    private static func token(in expression: String, at offset: Int) -> String {
        let bytes = Array(expression.utf8)
        guard let range = tokens(bytes).first(where: { $0.lowerBound == offset }) else {
            return String(decoding: bytes[min(offset, bytes.count)...], as: UTF8.self)
        }
        return String(decoding: bytes[range], as: UTF8.self)
    }
}
