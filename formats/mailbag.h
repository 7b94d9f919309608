/* mailbag.h - a mailbag: the .MBG record array and its .KEY slot bitmap.
 *
 * Facts: a .MBG is an array of 116-byte records, never deleted in place
 * (D, Q146113, Q148707); a .KEY is 560 bytes holding a 512-byte bitmap of
 * deleted (reusable) slots, hence at most 512*8 = 4096 records (D, Q119088,
 * Q138054, Q163020); a full INQUEUE3.MBG is 475,136 bytes (D, Q147253).
 * Inferred: the bitmap is the last 512 bytes after a 48-byte header, MSB
 * first, a set bit is a free slot; the header holds counters at unknown
 * offsets, so it is kept opaque and preserved byte for byte on rewrite.
 *
 * Delivery order (inferred): take the first free slot or append, refuse at
 * 4096 ("mailbag full", the [008] path of Q237695), write the record, then
 * the .KEY. The buffer-level functions below work on caller memory and do
 * not allocate; PoMailbag holds one loaded mailbag; the _fds helpers do one
 * operation directly on open files for the daemon and the simulator.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

#define PO_MAILBAG_KEY_SIZE 560         /* D, Q119088 */
#define PO_MAILBAG_KEY_HEADER_SIZE 48   /* inferred */
#define PO_MAILBAG_BITMAP_SIZE 512      /* D, Q119088 */
#define PO_MAILBAG_RECORD_SIZE 116      /* D, Q146113 */
#define PO_MAILBAG_MAX_RECORDS 4096     /* D, Q119088, Q163020 */
#define PO_MAILBAG_MBG_MAX_SIZE (PO_MAILBAG_MAX_RECORDS * PO_MAILBAG_RECORD_SIZE)

/* Record fields, all inferred from the dump in Q108027. Bytes not listed are
 * unknown and kept as they are. */
#define PO_RECORD_SENDER_OFFSET 0x02
#define PO_RECORD_SENDER_SIZE 11
#define PO_RECORD_SUBJECT_OFFSET 0x0D
#define PO_RECORD_SUBJECT_SIZE (0x38 - 0x0D)
#define PO_RECORD_DATE_OFFSET 0x38      /* u16 LE minute, hour, day, month, year */
#define PO_RECORD_MAI_OFFSET 0x43       /* 8 hex digits + NUL */
#define PO_RECORD_MAI_SIZE 9
/* A 32-bit checksum lives near here; its algorithm is unknown, so it is
 * never computed nor validated (writers leave the bytes as they are). */
#define PO_RECORD_CHECKSUM_OFFSET 0x6C

typedef struct {
        char sender[PO_RECORD_SENDER_SIZE + 1];   /* raw bytes up to NUL */
        char subject[PO_RECORD_SUBJECT_SIZE + 1];
        uint16_t minute, hour, day, month, year;
        char mai_name[PO_RECORD_MAI_SIZE];        /* "0009DF5E" or "" */
        bool has_message_number;                  /* mai_name is 8 hex digits */
        uint32_t message_number;
} PoRecord;

/* Reads the known fields of a 116-byte record; never fails (fields are
 * inferred, so odd bytes are reported as they are, not as corruption). */
void po_record_decode(const uint8_t *record, PoRecord *out);
/* Writes the known fields into @record, leaving every other byte alone.
 * When has_message_number is set, mai_name is derived from it. */
void po_record_encode(uint8_t *record, const PoRecord *in);

typedef struct {
        unsigned total;   /* slots in the .MBG (size / 116) */
        unsigned free;    /* bitmap bits set within total */
        unsigned live;    /* total - free */
        unsigned percent; /* live * 100 / 4096, the share of the hard limit */
        unsigned free_beyond_total; /* bits set past the end of the .MBG */
} PoMailbagStats;

/* Buffer level: @key is a PO_MAILBAG_KEY_SIZE buffer. */
bool po_mailbag_check_key_size(gsize key_len, const char *key_name, GError **error);
bool po_mailbag_check_mbg_size(gsize mbg_len, const char *mbg_name, GError **error);
bool po_mailbag_key_slot_is_free(const uint8_t *key, unsigned slot);
void po_mailbag_key_set_slot_free(uint8_t *key, unsigned slot, bool is_free);
/* The first free slot below @total, or -1. */
int po_mailbag_key_first_free(const uint8_t *key, unsigned total);
void po_mailbag_key_stats(const uint8_t *key, unsigned total, PoMailbagStats *out);
/* The slot an append would use (a free slot, else @total), or -1 when the
 * mailbag is full. */
int po_mailbag_key_slot_for_append(const uint8_t *key, unsigned total);

/* Read the fields freely; change them only through the functions below
 * (records has a capacity derived from total). */
typedef struct {
        uint8_t key[PO_MAILBAG_KEY_SIZE];
        uint8_t *records; /* total * PO_MAILBAG_RECORD_SIZE bytes */
        unsigned total;
} PoMailbag;

/* A fresh mailbag: all-zero .KEY, empty .MBG (D, Q135868). */
PoMailbag *po_mailbag_new(void);
/* Validates sizes and copies both buffers; names are used in errors. */
PoMailbag *po_mailbag_parse(const uint8_t *key, gsize key_len, const uint8_t *mbg,
                            gsize mbg_len, const char *key_name, const char *mbg_name,
                            GError **error);
void po_mailbag_free(PoMailbag *mailbag);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PoMailbag, po_mailbag_free)

void po_mailbag_stats(const PoMailbag *mailbag, PoMailbagStats *out);
/* Stores @record (116 bytes) in the first free slot or at the end; returns
 * the slot, or -1 with PO_FORMAT_ERROR_FULL at 4096 live records. */
int po_mailbag_append(PoMailbag *mailbag, const uint8_t *record, GError **error);
/* Marks @slot free; the record bytes stay (D, Q146113). PO_FORMAT_ERROR_RANGE
 * for a slot past the end or already free. */
bool po_mailbag_delete(PoMailbag *mailbag, unsigned slot, GError **error);
/* Iterates live slots: for (int s = po_mailbag_next_live(mb, -1); s >= 0;
 * s = po_mailbag_next_live(mb, s)). */
int po_mailbag_next_live(const PoMailbag *mailbag, int after);
/* The 116 bytes of @slot, or NULL past the end. */
const uint8_t *po_mailbag_record(const PoMailbag *mailbag, unsigned slot);

/* Files. @root is the postoffice root; @name the mailbag ("INQUEUE3"); the
 * files are root/KEY/<name>.KEY and root/MBG/<name>.MBG. */
PoMailbag *po_mailbag_load(const char *root, const char *name, GError **error);
/* Writes the .MBG then the .KEY (the delivery order). */
bool po_mailbag_save(const PoMailbag *mailbag, const char *root, const char *name,
                     GError **error);
PoMailbag *po_mailbag_load_fds(int key_fd, int mbg_fd, const char *key_name,
                               const char *mbg_name, GError **error);
/* One delivery on open files: reads the .KEY and the .MBG size, writes the
 * record into the chosen slot, then the updated .KEY. Returns the slot or
 * -1 (PO_FORMAT_ERROR_FULL when full). The caller holds the locks. */
int po_mailbag_append_fds(int key_fd, int mbg_fd, const uint8_t *record,
                          const char *key_name, const char *mbg_name, GError **error);
/* Marks @slot free in the .KEY on @key_fd; @mbg_fd gives the slot count. */
bool po_mailbag_delete_fds(int key_fd, int mbg_fd, unsigned slot, const char *key_name,
                           const char *mbg_name, GError **error);

G_END_DECLS
