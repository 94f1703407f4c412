#ifndef CMALLOCSTATS_H
#define CMALLOCSTATS_H
#include <stddef.h>
/// Bytes glibc's allocator has handed out and not freed (mallinfo2: uordblks + hblkhd).
size_t podtap_allocated_bytes(void);
#endif
