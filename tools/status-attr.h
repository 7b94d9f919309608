/* status-attr.h - reading the daemon's status attributes, for the tools.
 *
 * A mailbagfs mount serves user.mailbag.* attributes (status-line.h): the
 * mount root and every protected postoffice folder carry
 * PO_STATUS_ATTR_STATS, so a tool tells "through mailbagfs" from "raw" by
 * its postoffice folder alone, wherever in the mount it is.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* The attribute's value, NUL-terminated, with its length in @len (may be
 * NULL); NULL with errno set when it cannot be read (ENODATA: absent,
 * ENOTSUP: not a filesystem with user attributes). */
char *status_attr_read(const char *path, const char *name, gsize *len);

/* Reads and parses @name of @path (po_status_parse, origin "PATH: NAME").
 * NULL with errno set when absent, or with @error set (and errno EBADMSG)
 * when it does not parse. */
GPtrArray *status_attr_read_lines(const char *path, const char *name, GError **error);

/* Whether @dir is a postoffice mailbagfs protects (or the root of a mount:
 * the daemon serves PO_STATUS_ATTR_STATS on both). */
bool status_attr_is_protected(const char *dir);

/* The nearest ancestor of @dir that is a mailbagfs mount or protected
 * postoffice, or NULL: a postoffice inside a mount that the daemon does
 * not protect is worth a warning, as nothing serializes its mailbags. */
char *status_attr_enclosing_mount(const char *dir);

/* The mode of the mailbagfs mount @dir is on, read from its root's
 * PO_STATUS_ATTR_MODE (the nearest folder from @dir up to the mount's root
 * that has it), '\n' removed (caller frees): PO_STATUS_MODE_ENFORCE,
 * PO_STATUS_MODE_OBSERVE or a newer daemon's word. PO_STATUS_MODE_ENFORCE
 * when there is none: a daemon without modes enforces. */
char *status_attr_mode(const char *dir);

/* Whether the mailbagfs mount @dir is on only observes (-o mode=observe,
 * or switched there): status_attr_mode() says PO_STATUS_MODE_OBSERVE.
 * False for an enforcing mount, a daemon without modes, or no mount. */
bool status_attr_observing(const char *dir);

G_END_DECLS
