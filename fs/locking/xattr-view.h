/* xattr-view.h - the daemon's own read-only attributes, "user.mailbag.*".
 *
 * On a mailbag's KEY, MBG or lock file:
 *   user.mailbag.lock        who holds its session / KEY section / the file, or free
 *   user.mailbag.records     live records, free slots, total, the 4096 limit
 * On a postoffice folder:
 *   user.mailbag.locks       its held or awaited resources, one line each
 *   user.mailbag.stats       its lease counters
 * On any file:
 *   user.mailbag.ranges      the byte-range and flock locks taken on it
 *                            through this mount (empty when none)
 * On the mount root (which may be a postoffice itself):
 *   user.mailbag.ranges      every byte-range and flock lock of the mount
 *   user.mailbag.postoffices every protected postoffice, one line each
 *   user.mailbag.locks       every postoffice's held or awaited resources
 *   user.mailbag.stats       a line per postoffice, then the sums
 * And, root only, setting user.mailbag.break to "1" on a mailbag file ends
 * the hold on it (a hung MTA), which is logged; "ban=SECONDS" also refuses
 * the broken holder's process that file's leases for that long (at most a
 * day), so a program that takes the queue again at once cannot.
 * user.mailbag.freeze of a postoffice folder names the operators' freezes
 * held (freeze.h) and the last one refused.
 *
 * Values are status lines (formats/status-line.h: one writer, one parser),
 * so both people and mailbag-stat read them. Nothing here is stored on the
 * backing store. A value never reveals what its caller could not read:
 * records come from KEY and MBG files, so they are shown only to a caller
 * who may read both (by their modes, owner and group).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "byte-locks.h"
#include "mailbags.h"

#define XATTR_VIEW_PREFIX "user.mailbag."

/* Who asks, for the permission checks of the values that read files. */
typedef struct {
        uid_t uid;
        gid_t gid;
        const gid_t *groups; /* supplementary groups */
        int n_groups;
} XattrViewCaller;

bool xattr_view_reserved(const char *name);

/* The value of @name for the file at @relpath ("" is the root): 0 with a
 * new string in @value, -ENODATA when the file has no such attribute,
 * -EACCES when @caller may not read what it is made of. */
int xattr_view_get(Mailbags *mailbags, const char *relpath, bool is_folder, const char *name,
                   const XattrViewCaller *caller, char **value);

/* Appends the NUL-terminated names the file at @relpath offers. */
void xattr_view_list(Mailbags *mailbags, const char *relpath, bool is_folder, GString *list);

/* Handles a set of a reserved name, by root only (-EPERM otherwise): the
 * break attribute (-EINVAL for any value but "1" or "ban=SECONDS",
 * -ENODATA when nothing is held), or the mount root's mode ("enforce" or
 * "observe"; the switch is logged with @caller_pid). */
int xattr_view_set(Mailbags *mailbags, const char *relpath, const char *name, const char *value,
                   size_t size, uid_t caller_uid, pid_t caller_pid);

