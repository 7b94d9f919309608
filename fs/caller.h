/* caller.h - who is asking: FUSE reports the calling *thread*; locks belong
 * to the process, so map the thread id to its thread group id. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* The process (thread group) of thread @tid, or @tid itself when /proc does
 * not say (the thread has already gone). */
pid_t caller_process_of_thread(pid_t tid);

/* The short program name of process @pid ("EXTERNAL.EXE", "smbd"), written
 * to @buf; "?" when unknown. */
void caller_program_name(pid_t pid, char *buf, size_t size);
