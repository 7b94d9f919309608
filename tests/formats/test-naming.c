/* test-naming.c - message number <-> names and the 8.3 checks. */
#include "naming.h"
#include "test-util.h"

Test(naming, basename_and_mailbag_name)
{
        char name[PO_NAMING_BASENAME_MAX];
        po_naming_message_basename(0xABC, "MAI", name);
        cr_assert_str_eq(name, "00000ABC.MAI");
        po_naming_message_basename(1, "LONGER", name);
        cr_assert_str_eq(name, "00000001.LON");
        char bag[PO_NAMING_MAILBAG_MAX];
        po_naming_mailbag_name(0x1A, bag);
        cr_assert_str_eq(bag, "0000001A");
}

Test(naming, number_round_trip)
{
        TestRandom random = { 7 };
        for (int i = 0; i < 10000; i++) {
                uint32_t n = (uint32_t)test_random_next(&random), back = 0;
                char name[PO_NAMING_BASENAME_MAX];
                po_naming_message_basename(n, "MAI", name);
                cr_assert(po_naming_parse_message_basename(name, "MAI", &back));
                cr_assert_eq(back, n);
                g_autofree char *lower = g_ascii_strdown(name, -1);
                cr_assert(po_naming_parse_message_basename(lower, "mai", &back));
                cr_assert_eq(back, n);
                cr_assert_eq(po_naming_subfolder_digit(n), name[7]);
        }
}

Test(naming, parse_number_refuses_near_misses)
{
        uint32_t n;
        cr_assert(po_naming_parse_number("0009df5e", 8, &n));
        cr_assert_eq(n, 0x0009DF5E);
        cr_assert_not(po_naming_parse_number("0009DF5", 7, &n));
        cr_assert_not(po_naming_parse_number("0009DF5E0", 9, &n));
        cr_assert_not(po_naming_parse_number("0009DG5E", 8, &n));
        cr_assert_not(po_naming_parse_number("-009DF5E", 8, &n));
        cr_assert_not(po_naming_parse_message_basename("0009DF5E.P1", "MAI", &n));
        cr_assert_not(po_naming_parse_message_basename("0009DF5E", "MAI", &n));
        cr_assert_not(po_naming_parse_message_basename("", "MAI", &n));
        cr_assert_not(po_naming_parse_message_basename("0009DF5E.MAI.X", "MAI", &n));
}

Test(naming, dos_names)
{
        cr_assert(po_naming_is_valid_83("INQUEUE3.KEY"));
        cr_assert(po_naming_is_valid_83("FOLDERS"));
        cr_assert(po_naming_is_valid_83("A.B"));
        cr_assert(po_naming_is_valid_83("$_~!.#@"));
        cr_assert_not(po_naming_is_valid_83(""));
        cr_assert_not(po_naming_is_valid_83("."));
        cr_assert_not(po_naming_is_valid_83(".."));
        cr_assert_not(po_naming_is_valid_83("TOOLONGNAME.KEY"));
        cr_assert_not(po_naming_is_valid_83("NAME.KEYS"));
        cr_assert_not(po_naming_is_valid_83("NAME."));
        cr_assert_not(po_naming_is_valid_83("A B.KEY"));
        cr_assert_not(po_naming_is_valid_83("A.B.C"));
        cr_assert_not(po_naming_is_valid_83("\xc3\xa9T\xc3\xa9.KEY"));
        cr_assert(po_naming_is_valid_base("12345678", 8));
        cr_assert_not(po_naming_is_valid_base("123456789", 9));
        cr_assert_not(po_naming_is_valid_base("", 0));
        cr_assert(po_naming_has_lower("P1/foo.P1"));
        cr_assert_not(po_naming_has_lower("P1/FOO.P1"));
}
