#include "CMallocStats.h"
#include <malloc.h>

size_t podtap_allocated_bytes(void) {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}
