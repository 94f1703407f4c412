#define _GNU_SOURCE
#include <sched.h>
#include "CPodTapPacket.h"

int cpk_setns(int fd, int nstype) { return setns(fd, nstype); }
