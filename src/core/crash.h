/* crash.h: crash points for the fault tests.  In a debug build
 * (FASTPROM_DEBUG), FASTPROM_CRASH_POINT=<name> makes the process exit at
 * once (status 86, no cleanup, as a SIGKILL would leave it) when it reaches
 * the point of that name; the tests kill a process at every point and check
 * that the others carry on and that nothing recorded is lost.  Compiled out
 * otherwise. */
#ifndef FASTPROM_CRASH_H
#define FASTPROM_CRASH_H

#ifdef FASTPROM_DEBUG
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void fp_crash(const char *point)
{
    const char *want = getenv("FASTPROM_CRASH_POINT");
    if (want && strcmp(want, point) == 0)
        _exit(86);
}
#else
#define fp_crash(point) ((void)0)
#endif

#endif
