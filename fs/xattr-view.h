/* xattr-view.h - the daemon's own read-only attributes, "user.mailbag.*".
 *
 * On a mailbag's KEY, MBG or lock file:
 *   user.mailbag.lock     who holds its session / KEY section / the file, or free
 *   user.mailbag.records  live records, free slots, total, the 4096 limit
 * On the mount root:
 *   user.mailbag.locks    every held or awaited resource, one line each
 *   user.mailbag.stats    the lease counters
 * And, root only, setting user.mailbag.break to "1" on a mailbag file ends
 * the hold on it (a hung MTA), which is logged.
 *
 * Values are text, one resource per line, as space-separated key=value
 * fields after the kind and name, so both people and mailbag-stat read
 * them. Nothing here is stored on the backing store.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "mailbags.h"

#define XATTR_VIEW_PREFIX "user.mailbag."

bool xattr_view_reserved(const char *name);

/* The value of @name for the file at @relpath ("" is the root): 0 with a
 * new string in @value, or -ENODATA when the file has no such attribute. */
int xattr_view_get(Mailbags *mailbags, const char *relpath, const char *name, char **value);

/* Appends the NUL-terminated names the file at @relpath offers. */
void xattr_view_list(Mailbags *mailbags, const char *relpath, GString *list);

/* Handles a set of a reserved name: -EPERM unless it is the break
 * attribute set by root, -EINVAL for any value but "1", -ENODATA when
 * nothing is held. */
int xattr_view_set(Mailbags *mailbags, const char *relpath, const char *name, const char *value,
                   size_t size, uid_t caller_uid);
