import CaptureCore
import Testing

@Suite("Name table")
struct NameTableTests {
    @Test("A full table gives a new name the place of the name unreferenced longest; old IDs then name nothing")
    func reuseOldestUnreferenced() {
        let table = NameTable(capacity: 3)
        let a = table.intern(hash: 1) { "a" }, b = table.intern(hash: 2) { "b" }, c = table.intern(hash: 3) { "c" }
        for id in [a, b, c] { table.retain(id) }
        // Every place holds a referenced name: nothing is taken away.
        #expect(table.intern(hash: 4) { "d" } == 0)
        #expect(table.overflowed == 1)
        #expect(table[a] == "a" && table[b] == "b" && table[c] == "c")

        table.release(c)
        table.release(a)  // unreferenced after c
        let d = table.intern(hash: 4) { "d" }
        #expect(d != 0 && d != c)
        #expect(table[d] == "d")
        #expect(table[c] == "", "an ID whose place was reused names nothing, never the new name")
        #expect(table[a] == "a" && table[b] == "b")
        #expect(table.reused == 1 && table.count == 3)
        // The next one takes a's place; c's name is no longer known by its hash.
        let e = table.intern(hash: 5) { "e" }
        #expect(table[e] == "e" && table[a] == "")
        #expect(table.intern(hash: 6) { "f" } == 0, "b, d and e are not released")
        #expect(table.overflowed == 2)
        let c2 = table.intern(hash: 3) { "c" }
        #expect(c2 == 0)
    }

    @Test("A name held again after its release keeps its place; releasing an unknown or stale ID changes nothing")
    func heldAgain() {
        let table = NameTable(capacity: 2)
        let a = table.intern(hash: 1) { "a" }, b = table.intern(hash: 2) { "b" }
        table.retain(a)
        table.retain(b)
        table.release(a)
        #expect(table.intern(hash: 1) { "a" } == a, "still interned under its hash")
        table.retain(a)
        #expect(table.references(of: a) == 1)
        #expect(table.intern(hash: 3) { "c" } == 0, "a is held again, so its queued place is skipped")
        table.release(a)
        table.release(a)  // one release too many: ignored
        table.release(0)
        table.release(0xdead_beef)
        #expect(table.references(of: a) == 0 && table.references(of: b) == 1)
        let c = table.intern(hash: 3) { "c" }
        #expect(table[c] == "c" && table[a] == "")
        table.release(a)  // stale: ignored, c keeps no reference it did not get
        #expect(table.references(of: c) == 0)
    }

    @Test("A name that cannot be read does not use up a free place")
    func unreadableName() {
        let table = NameTable(capacity: 1)
        let a = table.intern(hash: 1) { "a" }
        table.retain(a)
        table.release(a)
        #expect(table.intern(hash: 2) { nil } == 0)
        #expect(table[a] == "a", "the place was put back")
        let b = table.intern(hash: 3) { "b" }
        #expect(table[b] == "b" && table[a] == "")
    }
}
