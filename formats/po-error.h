/* po-error.h - the error domain of the postoffice formats.
 *
 * Corrupt input is an error value, never a crash: every message names the
 * file, the byte offset and what was expected there, as
 * "FILE: offset 0xNN: expected ...". Mailbag full is its own code because
 * callers turn it into the [008] delivery failure (Q237695).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PO_FORMAT_ERROR (po_format_error_quark())
GQuark po_format_error_quark(void);

typedef enum {
        PO_FORMAT_ERROR_CORRUPT, /* the bytes do not match the format */
        PO_FORMAT_ERROR_FULL,    /* a mailbag already holds 4096 live records */
        PO_FORMAT_ERROR_RANGE,   /* an argument is out of range (slot, counter) */
        PO_FORMAT_ERROR_IO,      /* a system call failed; the message has errno */
} PoFormatError;

/* Sets PO_FORMAT_ERROR_CORRUPT: "FILE: offset 0xNN: expected <what>". */
void po_format_set_corrupt(GError **error, const char *file, guint64 offset,
                           const char *format, ...) G_GNUC_PRINTF(4, 5);
/* Sets PO_FORMAT_ERROR_IO: "FILE: <what>: <strerror(errnum)>". */
void po_format_set_io(GError **error, const char *file, int errnum,
                      const char *what);

G_END_DECLS
