import Foundation
@testable import K8sMeta
@testable import K8sMetaClient
import NIOCore
import Testing

@Suite struct LineSplitterTests {
    private func split(_ bytes: [UInt8], at cuts: [Int]) -> (lines: [[UInt8]], pending: Int) {
        var splitter = LineSplitter(maximumLineBytes: 1 << 20)
        var lines: [[UInt8]] = []
        var start = 0
        for end in cuts + [bytes.count] where end >= start {
            var chunk = ByteBuffer(bytes: bytes[start..<end])
            _ = splitter.append(&chunk)
            while let line = splitter.next() { lines.append(Array(line.readableBytesView)) }
            start = end
        }
        return (lines, splitter.pendingBytes)
    }

    @Test func everySplitOfTheFirstEventsGivesTheSameLines() throws {
        let all = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("watch/scenario/pods.watch.ndjson")))
        let expected = all.split(separator: UInt8(ascii: "\n")).map(Array.init)
        // Split points: every byte near the ends of the first three events, and every 37th byte of them.
        let head = Array(all.prefix(expected.prefix(3).reduce(0) { $0 + $1.count + 1 }))
        var boundaries: [Int] = []
        var offset = 0
        for line in expected.prefix(3) {
            offset += line.count + 1
            boundaries.append(offset)
        }
        let cuts = Set(boundaries.flatMap { b in max(0, b - 40)...min(head.count, b + 40) })
            .union(stride(from: 0, through: head.count, by: 37))
        var mismatches: [Int] = []
        for cut in cuts.sorted() {
            let result = split(head, at: [cut])
            if result.lines != Array(expected.prefix(3)) || result.pending != 0 { mismatches.append(cut) }
        }
        #expect(mismatches == [])
        #expect(cuts.count > 200)
        // Many small chunks over the whole stream.
        for size in [7, 100, 4096] {
            #expect(split(all, at: Array(stride(from: size, to: all.count, by: size))).lines == expected)
        }
    }

    @Test func unterminatedTailStaysPending() {
        let bytes = Array("{\"type\":\"ADDED\"}\n{\"type\":\"MOD".utf8)
        let result = split(bytes, at: [5, 20])
        #expect(result.lines == [Array("{\"type\":\"ADDED\"}".utf8)])
        #expect(result.pending == 12)
    }

    @Test func overlongLineIsRefused() {
        var splitter = LineSplitter(maximumLineBytes: 8)
        var small = ByteBuffer(bytes: Array("12345".utf8))
        let accepted = splitter.append(&small)
        #expect(accepted)
        var more = ByteBuffer(bytes: Array("67890".utf8))
        let refused = !splitter.append(&more)
        #expect(refused)
    }
}

@Suite struct BackoffTests {
    @Test func growsDoublesAndCaps() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1), multiplier: 2, jitter: 0)
        #expect((1...6).map { backoff.delay(attempt: $0) } == [
            .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1),
        ])
    }

    @Test func jitterStaysInBounds() {
        let backoff = Backoff(initial: .seconds(1), maximum: .seconds(10), multiplier: 2, jitter: 0.2)
        let delays = (0..<200).map { _ in backoff.delay(attempt: 2) }
        #expect(delays.allSatisfy { $0 >= .milliseconds(1600) && $0 <= .milliseconds(2400) })
        #expect(Set(delays).count > 1)
    }

    @Test func retryAfterRaisesTheDelayUpToTheMaximum() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(30), jitter: 0)
        #expect(backoff.delay(attempt: 1, retryAfterSeconds: 3) == .seconds(3))
        let capped = Backoff(initial: .milliseconds(100), maximum: .milliseconds(500), jitter: 0)
        #expect(capped.delay(attempt: 1, retryAfterSeconds: 3) == .milliseconds(500))
    }
}
