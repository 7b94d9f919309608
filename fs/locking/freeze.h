/* freeze.h - an operator's hold on a whole postoffice, for a backup
 * (po-freeze, through the root-only attribute user.mailbag.freeze).
 *
 * For a root process the daemon takes every queue session, the KEY write
 * section of every mailbag that has a KEY file, and every exclusive global
 * file of a postoffice, one after the other and in line like any holder:
 * sessions first, then KEY sections, then global files, each in name
 * order. Programs inside finish their turn; new ones wait or are refused
 * as for any holder. The processes of the freezer's session (the command
 * po-freeze runs, and its children) share the hold: their opens join it
 * at once. The hold ends when the freezer lets go, or the moment it dies:
 * its references are not file handles, so the lease manager reclaims them.
 * On a cluster the leases hold on every node, through the lease file.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "mailbags.h"

typedef struct Freezes Freezes;

Freezes *freezes_new(void);
void freezes_free(Freezes *freezes);

/* The freeze asked for on folder @relpath by thread @tid (its process
 * holds it): with @timeout_ms, freeze_take(); with 0, freeze_release().
 * -EINVAL when the folder is no protected postoffice. */
int freeze_folder(Mailbags *mailbags, const char *relpath, pid_t tid, uint32_t timeout_ms);

/* Takes @po (at @po_path) for process @pid, waiting at most @timeout_ms
 * in all; blocks the calling thread. 0; or -EBUSY (time is up), -ESRCH
 * (the freezer died), -EALREADY (it holds a freeze there already),
 * -ECANCELED (the postoffice went) with nothing left held, and what it
 * waited for and who held it kept as the postoffice's last refusal. */
int freeze_take(Mailbags *mailbags, Postoffice *po, const char *po_path, pid_t pid,
                int timeout_ms);

/* Lets go of @pid's freeze of @po: 0, or -ENOENT when it holds none. */
int freeze_release(Mailbags *mailbags, Postoffice *po, pid_t pid);

/* A hold of @pid in @po ended without its release (it died, or was
 * broken): a freeze of it is over. */
void freeze_hold_ended(Mailbags *mailbags, Postoffice *po, pid_t pid);

/* Whether the caller of a status read may see process @pid. */
typedef bool (*FreezeSeesFn)(pid_t pid, const void *data);

/* The freezes of @po (at @po_path) and its last refusal as status lines
 * (status-line.h, "Freeze lines"), "" when none; a process @sees says the
 * reader may not see is written pid 0, program "?". */
char *freeze_describe(Mailbags *mailbags, Postoffice *po, const char *po_path,
                      FreezeSeesFn sees, const void *data);
