/* caller.h - who is asking: FUSE reports the calling *thread*; locks belong
 * to the process, so map the thread id to its thread group id. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The process (thread group) of thread @tid, or @tid itself when /proc does
 * not say (the thread has already gone). */
pid_t caller_process_of_thread(pid_t tid);

/* The short program name of process @pid ("EXTERNAL.EXE", "smbd"), written
 * to @buf; "?" when unknown. */
void caller_program_name(pid_t pid, char *buf, size_t size);

/* Both of the above for thread @tid, from one read of /proc when the
 * thread leads its process (a single-threaded program). */
void caller_identify(pid_t tid, pid_t *pid, char *program, size_t size);

/* A thread's name read less than this many microseconds ago is answered
 * again without reading it (caller.c says what that can make stale). */
#define CALLER_NAME_REUSE_US 1000

/* Closes the descriptors kept to identify callers faster (at exit). */
void caller_cache_clear(void);

/* The session of process @pid (getsid), 0 when it is gone. */
pid_t caller_session_of(pid_t pid);

/* The real uid of process @pid: 0 with *@uid set, or -errno. */
int caller_process_uid(pid_t pid, uid_t *uid);

/* Whether /proc (as the daemon sees it) hides other users' processes
 * (mounted with hidepid=1, 2, invisible or noaccess). */
bool caller_proc_hides_pids(void);

/* Who is behind process @pid (@program, acting for @uid), for the trail:
 * for smbd "smb ADDRESS:PORT user=NAME" (its SMB client's connection), for
 * wineserver "wine PREFIX"; NULL for any other program (caller frees). */
char *caller_client(pid_t pid, const char *program, uid_t uid);
