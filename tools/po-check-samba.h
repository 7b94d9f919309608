/* po-check-samba.h - po-check --samba: the Samba shares that reach a
 * mailbagfs mount or its backing directory, checked against the settings
 * the mount needs (README, "A Samba share over the mount").
 *
 * The configuration is the one smbd reads, as Samba's own parser prints
 * it: `testparm -s -v`, which writes every parameter of [global] (the
 * defaults of this Samba included) and, for each share, those that differ
 * from [global]. A share's value is therefore its own line, else the
 * [global] line.
 *
 * The steps, each its own function so the parsers can be tested on text:
 *   po_samba_testparm()     runs testparm, bounded in time and output
 *   po_samba_conf_parse()   its output -> [global] and the shares
 *   po_mounts_parse()       /proc/self/mountinfo -> the mounts (formats/)
 *   po_samba_check()        the shares that reach a mount -> findings
 * po_samba_run() does all four.
 *
 * A mount's backing directory is the "source" field of mountinfo: the
 * daemon passes its BACKING argument, made absolute, as the mount's fsname
 * (fs/main.c); no status attribute names it. A mount made by an older
 * daemon with a relative one cannot be placed: it gets a note, and shares
 * of its backing directory are not recognised.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "mountinfo.h"

G_BEGIN_DECLS

#define PO_SAMBA_ERROR (po_samba_error_quark())
GQuark po_samba_error_quark(void);

typedef enum {
        PO_SAMBA_ERROR_PARSE,    /* the text is not what was expected */
        PO_SAMBA_ERROR_TESTPARM, /* testparm is missing, failed or overran */
        PO_SAMBA_ERROR_IO,       /* the mount table cannot be read */
} PoSambaError;

/* --- testparm's output ------------------------------------------------- */

typedef struct {
        char *name;         /* as testparm prints it; "global" for [global] */
        GHashTable *params; /* parameter name, lower case -> value, both trimmed */
} PoSambaSection;

typedef struct {
        PoSambaSection *global;
        GPtrArray *shares; /* PoSambaSection, in testparm's order */
} PoSambaConf;

/* Parses the output of `testparm -s` (with or without -v): "[NAME]"
 * section lines, "NAME = VALUE" parameter lines, blank lines and "#"
 * comments. NULL with @error set ("line N: ...") on any other line, a
 * parameter before the first section, or no [global] section. Pure: no
 * I/O, any bytes. */
PoSambaConf *po_samba_conf_parse(const char *text, GError **error);
void po_samba_conf_free(PoSambaConf *conf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PoSambaConf, po_samba_conf_free)

/* @param (lower case) of @share (NULL: [global]): its own value, else
 * [global]'s, else NULL (testparm did not print it). */
const char *po_samba_conf_value(const PoSambaConf *conf, const PoSambaSection *share,
                                const char *param);

/* --- mounts ------------------------------------------------------------ */

/* The mounts are formats/mountinfo.h's PoMount, parsed by
 * po_mounts_parse(). */
typedef PoMount PoSambaMount;

/* --- the check --------------------------------------------------------- */

#define PO_SAMBA_KIND_BACKING "samba-backing-share"
#define PO_SAMBA_KIND_SETTING "samba-setting"

typedef struct {
        const char *kind;  /* PO_SAMBA_KIND_* */
        char *share;       /* the share's name */
        char *path;        /* its path, as testparm printed it */
        char *mount;       /* the mailbagfs mount point it reaches */
        char *backing;     /* PO_SAMBA_KIND_BACKING: the backing directory it reaches */
        char *setting;     /* PO_SAMBA_KIND_SETTING: the parameter, */
        char *found;       /* its value ("" when testparm printed none), */
        char *needed;      /* and the value the mount needs */
        char *detail;      /* one sentence: what is wrong and what follows */
} PoSambaFinding;

void po_samba_finding_free(PoSambaFinding *finding);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PoSambaFinding, po_samba_finding_free)

typedef struct {
        /* PoSambaFinding; the backing-directory shares first, they are
         * the worst: their clients bypass every lease. */
        GPtrArray *findings;
        GPtrArray *notes;      /* char *: what could not be checked, one sentence each */
        guint shares;          /* shares testparm printed */
        guint shares_reaching; /* of those, reaching a mailbagfs mount or its backing */
        guint mounts;          /* mailbagfs mounts in mountinfo */
} PoSambaReport;

void po_samba_report_free(PoSambaReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PoSambaReport, po_samba_report_free)

/* Checks every share of @conf whose path reaches one of @mounts'
 * mailbagfs mounts (at, below or above its mount point) or one's backing
 * directory. Paths are compared after realpath(3), which only looks names
 * up (no file is opened); one that does not resolve (missing, a dead
 * mount) is compared as written, made absolute. A share of a backing
 * directory gets that finding alone: its settings do not matter until it
 * is moved to the mount. */
PoSambaReport *po_samba_check(const PoSambaConf *conf, const GPtrArray *mounts);

/* --- running it -------------------------------------------------------- */

/* The output of `testparm -s -v [SMB_CONF]` (@smb_conf NULL: testparm's
 * default file), run from PATH without a shell, stdin from /dev/null, in
 * the C locale; NULL with @error set when testparm is missing, fails (its
 * own words), or exceeds PO_SAMBA_TESTPARM_SECONDS or
 * PO_SAMBA_TESTPARM_OUTPUT_MAX bytes (then it is killed). */
#define PO_SAMBA_TESTPARM_SECONDS 30
#define PO_SAMBA_TESTPARM_OUTPUT_MAX (16 * 1024 * 1024)
char *po_samba_testparm(const char *smb_conf, GError **error);

/* testparm, its parse, this process's mountinfo and the check. NULL with
 * @error set when any of the first three fails. */
PoSambaReport *po_samba_run(const char *smb_conf, GError **error);

G_END_DECLS
