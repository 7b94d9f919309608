/* process-name.h - naming a forked test child after the program it plays
 * (the daemon tells programs apart by their process name).
 *
 * Not prctl(): under the address sanitizer the library call goes through
 * an interceptor that records the name under the sanitizer's thread
 * registry lock. A child forked while another thread of the parent held
 * that lock (starting or ending: the lock module runs a watch thread)
 * waits for it forever. Measured with a thread that starts and joins
 * threads while the main one forks: 8 of 2,000 children hung in prctl(),
 * none with the system call, which takes no lock.
 */
#pragma once

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline void harness_name_process(const char *name)
{
        syscall(SYS_prctl, PR_SET_NAME, (unsigned long)name, 0UL, 0UL, 0UL);
}
