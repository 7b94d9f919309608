/* glb.h - the global files: CONTROL.GLB, the ACCESS*.GLB user arrays, the
 * fixed sizes of the other GLB files, and .NME name records.
 *
 * CONTROL.GLB is 8 bytes: u32 LE next mailbag number at 0, u32 LE next
 * message number at 4; it is opened DENY_ALL for read-increment-write, or
 * two processes allocate the same .MAI name (D, Q99204, Q87388).
 * ACCESS.GLB (586-byte records), ACCESS2.GLB (69) and ACCESS3.GLB (512) are
 * parallel arrays: record n of each is the same user, and Listuser checks
 * that they agree (D, Q77926, Q87402, Q135932). Where the alias lives in an
 * ACCESS.GLB record is not documented: it is assumed (inferred) to be the
 * first PO_GLB_ACCESS_ALIAS_SIZE bytes, NUL padded, and that assumption is
 * these two constants only. .NME files are 45-byte records (alias, TID, type
 * 4 = group, 2 = external, offset; D, Q107767); field offsets are inferred.
 * Everything else in these records is opaque (passwords are enciphered with
 * an unpublished cipher, D, Q130322).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

#define PO_GLB_CONTROL_SIZE 8            /* D, Q99204 */
#define PO_GLB_ACCESS_RECORD_SIZE 586    /* D, Q87402 */
#define PO_GLB_ACCESS2_RECORD_SIZE 69    /* D, Q87402 */
#define PO_GLB_ACCESS3_RECORD_SIZE 512   /* D, Q87402 */
#define PO_GLB_ACCESS_ALIAS_OFFSET 0     /* inferred */
#define PO_GLB_ACCESS_ALIAS_SIZE 10      /* inferred: aliases are up to 10 characters */
#define PO_GLB_NME_RECORD_SIZE 45        /* D, Q107767 */

typedef struct {
        uint32_t next_mailbag;
        uint32_t next_message;
} PoControl;

bool po_glb_control_parse(const uint8_t *data, gsize len, const char *name,
                          PoControl *out, GError **error);
void po_glb_control_write(uint8_t out[PO_GLB_CONTROL_SIZE], const PoControl *control);
/* Read-increment on a buffer: *number gets the next message (mailbag)
 * number and the buffer is updated. PO_FORMAT_ERROR_RANGE when the counter
 * would wrap past 0xFFFFFFFF (FFFFFFFF.MAI would be reused). */
bool po_glb_control_take_message_number(uint8_t *data, gsize len, const char *name,
                                        uint32_t *number, GError **error);
bool po_glb_control_take_mailbag_number(uint8_t *data, gsize len, const char *name,
                                        uint32_t *number, GError **error);
/* The same on an open CONTROL.GLB; the caller holds it DENY_ALL. */
bool po_glb_control_take_message_number_fd(int fd, const char *name, uint32_t *number,
                                           GError **error);

typedef enum {
        PO_GLB_ACCESS,
        PO_GLB_ACCESS2,
        PO_GLB_ACCESS3,
} PoGlbAccessFile;

gsize po_glb_access_record_size(PoGlbAccessFile which);
/* Record count of an ACCESS*.GLB of @len bytes; a partial record is
 * PO_FORMAT_ERROR_CORRUPT naming @name and the offset of the remainder. */
bool po_glb_access_count(PoGlbAccessFile which, gsize len, const char *name,
                         unsigned *count, GError **error);

typedef enum {
        PO_GLB_ALIAS_OK = 0,
        PO_GLB_ALIAS_EMPTY,       /* first byte NUL: an unused record (inferred) */
        PO_GLB_ALIAS_UNPRINTABLE, /* the Listuser "unrecognizable characters" sign */
} PoGlbAliasStatus;

/* Reads the alias of record @index of ACCESS.GLB into @out (printable
 * characters only; unprintable bytes become '?'); *@bad_offset gets the file
 * offset of the first unprintable byte. @index must be below the count. */
PoGlbAliasStatus po_glb_access_alias(const uint8_t *access, gsize len, unsigned index,
                                     char out[PO_GLB_ACCESS_ALIAS_SIZE + 1],
                                     gsize *bad_offset);
/* Whole-set check: record counts agree and every used alias is printable.
 * The first problem is reported; *@n_users gets the ACCESS.GLB count. */
bool po_glb_access_check(const uint8_t *access, gsize access_len,
                         gsize access2_len, gsize access3_len,
                         unsigned *n_users, GError **error);
/* Fills a fresh ACCESS.GLB record: zeros and the alias (upper case). */
void po_glb_access_record_init(uint8_t record[PO_GLB_ACCESS_RECORD_SIZE], const char *alias);

/* .NME records (field offsets inferred). */
#define PO_GLB_NME_ALIAS_SIZE 10
#define PO_GLB_NME_TYPE_EXTERNAL 2  /* D, Q107767 */
#define PO_GLB_NME_TYPE_GROUP 4     /* D, Q107767 */

typedef struct {
        char alias[PO_GLB_NME_ALIAS_SIZE + 1];
        uint32_t tid;
        uint8_t type;
        uint32_t offset;
} PoNmeEntry;

bool po_glb_nme_count(gsize len, const char *name, unsigned *count, GError **error);
/* Decodes record @index; false (PO_FORMAT_ERROR_RANGE) past the end. */
bool po_glb_nme_entry(const uint8_t *data, gsize len, unsigned index, PoNmeEntry *out,
                      GError **error);
/* Encodes @entry into a 45-byte record; unknown bytes are zeroed. */
void po_glb_nme_entry_write(uint8_t record[PO_GLB_NME_RECORD_SIZE], const PoNmeEntry *entry);

/* Sizes of the other GLB files (D, Q77926, Q87402, Q87465): CONTROL 8,
 * FLAG 2, GLOBAL 512, MASTER 176, TID 4, NETPO 4+43n, GROUP 4+51n,
 * NETWORK 122n, and the ACCESS record sizes. @basename is matched in any
 * case; unknown names are accepted. */
bool po_glb_check_size(const char *basename, gsize size, const char *name, GError **error);
/* The size of a fresh file with no entries, or -1 for an unknown name. */
gssize po_glb_fresh_size(const char *basename);

G_END_DECLS
