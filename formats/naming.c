/* naming.c - message number <-> file names, and 8.3 name checks. Pure
 * functions on caller buffers: no allocation, safe from any thread. */
#include "naming.h"

#include <stdio.h>
#include <string.h>

char po_naming_subfolder_digit(uint32_t number)
{
        return "0123456789ABCDEF"[number & 0xF];
}

void po_naming_message_basename(uint32_t number, const char *ext,
                                char out[PO_NAMING_BASENAME_MAX])
{
        snprintf(out, PO_NAMING_BASENAME_MAX, "%08X.%.3s", number, ext);
}

void po_naming_mailbag_name(uint32_t number, char out[PO_NAMING_MAILBAG_MAX])
{
        snprintf(out, PO_NAMING_MAILBAG_MAX, "%08X", number);
}

bool po_naming_parse_number(const char *text, gsize len, uint32_t *number)
{
        if (len != 8)
                return false;
        uint32_t value = 0;
        for (gsize i = 0; i < 8; i++) {
                int digit = g_ascii_xdigit_value(text[i]);
                if (digit < 0)
                        return false;
                value = value << 4 | (uint32_t)digit;
        }
        *number = value;
        return true;
}

bool po_naming_parse_message_basename(const char *name, const char *ext,
                                      uint32_t *number)
{
        const char *dot = strchr(name, '.');
        if (dot == NULL || g_ascii_strcasecmp(dot + 1, ext) != 0)
                return false;
        return po_naming_parse_number(name, dot - name, number);
}

bool po_naming_is_dos_char(char c)
{
        /* The characters MS-DOS allows in a file name besides letters and
         * digits. Bytes >= 0x80 are code-page dependent: refused. */
        if (g_ascii_isalnum(c))
                return true;
        return c != '\0' && strchr("!#$%&'()-@^_`{}~", c) != NULL;
}

static bool naming_all_dos(const char *text, gsize len)
{
        for (gsize i = 0; i < len; i++)
                if (!po_naming_is_dos_char(text[i]))
                        return false;
        return true;
}

bool po_naming_is_valid_base(const char *text, gsize len)
{
        return len >= 1 && len <= 8 && naming_all_dos(text, len);
}

bool po_naming_is_valid_extension(const char *text, gsize len)
{
        return len >= 1 && len <= 3 && naming_all_dos(text, len);
}

bool po_naming_is_valid_83(const char *name)
{
        const char *dot = strchr(name, '.');
        if (dot == NULL)
                return po_naming_is_valid_base(name, strlen(name));
        return po_naming_is_valid_base(name, dot - name) &&
               po_naming_is_valid_extension(dot + 1, strlen(dot + 1));
}

bool po_naming_has_lower(const char *name)
{
        for (; *name; name++)
                if (g_ascii_islower(*name))
                        return true;
        return false;
}
