// A software prefetch without C: LLVM's prefetch intrinsic, declared under its own name.
// It becomes one `prefetcht0` (x86-64) or `prfm pldl1keep` (arm64) instruction, which never
// faults and never blocks, unlike a load used as a prefetch, which holds up retirement
// until its cache miss resolves.

@_silgen_name("llvm.prefetch.p0")
@usableFromInline
func _llvmPrefetch(_ address: UnsafeRawPointer, _ write: Int32, _ locality: Int32, _ cacheType: Int32)

/// Asks the CPU to bring the cache line holding `address` closer, for reading. A hint: it
/// never faults, whatever the address, and costs one instruction.
@inlinable @inline(__always)
public func prefetchForReading(_ address: UnsafeRawPointer) {
    unsafe _llvmPrefetch(address, 0, 3, 1)
}
