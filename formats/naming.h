/* naming.h - the naming rules of a postoffice.
 *
 * Message n is the file "%08X" n plus an extension: its body
 * MAI/MA<d>/<n>.MAI, where <d> is the last hex digit of n (D, Q87409,
 * Q108027), its routing envelope P1/<n>.P1 (D, Q100826), its attachments
 * ATT/AT<d>/<n>.ATT (D, Q123248). User mailbags are named by their hex
 * mailbag number (D, Q77926). Names are DOS 8.3 and upper case (D, Q129456).
 * Whole paths, whose folder names a profile may change, are built by the
 * po_profile_*_path() functions of profile.h.
 *
 * Nothing here allocates; every output buffer has a documented fixed size.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

/* "0009DF5E.MAI" is 12 characters (8.3). */
#define PO_NAMING_BASENAME_MAX 13
/* A mailbag name or an 8-digit number: 8 characters. */
#define PO_NAMING_MAILBAG_MAX 9

/* The hex digit that picks MA0..MAF / AT0..ATF for message @number. */
char po_naming_subfolder_digit(uint32_t number);
/* "%08X.<ext>"; @ext is 1-3 characters (longer is cut to 3). */
void po_naming_message_basename(uint32_t number, const char *ext,
                                char out[PO_NAMING_BASENAME_MAX]);
/* "%08X": the mailbag name of a user's mailbag number. */
void po_naming_mailbag_name(uint32_t number, char out[PO_NAMING_MAILBAG_MAX]);

/* Exactly 8 hex digits, any case, in @text[0..@len). */
bool po_naming_parse_number(const char *text, gsize len, uint32_t *number);
/* "<8 hex>.<ext>" in any case; @ext compared case-insensitively. */
bool po_naming_parse_message_basename(const char *name, const char *ext,
                                      uint32_t *number);

/* A character DOS accepts in a file name (upper case only for letters is
 * not required here: see po_naming_has_lower). */
bool po_naming_is_dos_char(char c);
/* A valid 8.3 base name (1-8 DOS characters, no dot). */
bool po_naming_is_valid_base(const char *text, gsize len);
/* A valid 8.3 extension (1-3 DOS characters, no dot). */
bool po_naming_is_valid_extension(const char *text, gsize len);
/* A valid 8.3 file name: BASE or BASE.EXT. */
bool po_naming_is_valid_83(const char *name);
/* Any ASCII lower-case letter in @name (served names must be upper case,
 * D, Q129456, Q152903). */
bool po_naming_has_lower(const char *name);

G_END_DECLS
