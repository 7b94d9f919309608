/* sample-postoffice.h - postoffices for the tests: the few files of a
 * fresh postoffice that the locking tests touch, made by hand, and a
 * whole one made by this tree's mkpo. Each fails the test when it cannot
 * make what it was asked for. */
#pragma once

/* Makes @dir, and its parents where missing, the part of a fresh
 * postoffice the tests touch: the INQUEUE3 mailbag (a KEY of 560 zero
 * bytes, an empty MBG), an empty P1, and GLB/CONTROL.GLB and
 * GLB/ACCESS.GLB of zeros at their fresh sizes (formats/glb.h). */
void harness_make_postoffice(const char *dir);

/* Adds the mailbag @name to the postoffice in @dir: KEY/@name.KEY of 560
 * zero bytes and an empty MBG/@name.MBG. */
void harness_make_mailbag(const char *dir, const char *name);

/* Has mkpo (the MKPO environment variable) make a sample postoffice in
 * @dir, which must be missing or empty: @users users besides the
 * administrator and @messages messages, all of them queued in INQUEUE3. */
void harness_mkpo(const char *dir, unsigned users, unsigned messages);
