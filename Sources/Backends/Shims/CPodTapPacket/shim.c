#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include "CPodTapPacket.h"

int cpk_setns(int fd, int nstype) { return setns(fd, nstype); }

int cpk_set_thread_name(const char *name) {
    char cut[16];
    strncpy(cut, name, sizeof cut - 1);
    cut[sizeof cut - 1] = 0;
    return pthread_setname_np(pthread_self(), cut);
}
