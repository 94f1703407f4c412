import Backends
import Testing

@Suite("C libraries")
@MainActor struct LibrariesTests {
    @Test("libpcap is linked and reports TPACKET_V3 support")
    func libpcapVersion() {
        #expect(BackendLibraries.libpcap.hasPrefix("libpcap version 1."))
        #expect(BackendLibraries.libpcap.contains("TPACKET_V3"))
    }
}
