/*
 * test_display.c - the headless display: frames kept in a ring, the frame counter, and
 * the ASCII renderings.
 */
#include <check.h>
#include <string.h>

#include "fw/fw_device.h"
#include "sim/display.h"
#include "sim/err.h"

static void frame_with_pixel(uint8_t *fb, int x, int y)
{
    memset(fb, 0, FW_FB_BYTES);
    fb[(y / 8) * FW_FB_WIDTH + x] |= (uint8_t)(1u << (y % 8));
}

START_TEST(the_display_keeps_the_last_frames_newest_first_and_counts_all)
{
    struct sim_display *d;
    uint8_t fb[FW_FB_BYTES], out[FW_FB_BYTES];

    ck_assert_int_eq(sim_display_headless_create(3, &d), SIM_OK);
    ck_assert_int_eq(sim_display_frame(d, 0, out), SIM_ERR_NOT_FOUND);
    for (int i = 0; i < 5; i++) {
        frame_with_pixel(fb, i, i);
        sim_display_flush(d, fb);
    }
    ck_assert_uint_eq(sim_display_frame_count(d), 5);
    for (unsigned age = 0; age < 3; age++) {
        ck_assert_int_eq(sim_display_frame(d, age, out), SIM_OK);
        ck_assert(fw_fb_pixel(out, 4 - (int)age, 4 - (int)age));
    }
    ck_assert_int_eq(sim_display_frame(d, 3, out), SIM_ERR_NOT_FOUND);
    sim_display_free(d);
}
END_TEST

START_TEST(a_counting_only_display_keeps_no_frame)
{
    struct sim_display *d;
    uint8_t fb[FW_FB_BYTES] = { 0 }, out[FW_FB_BYTES];

    ck_assert_int_eq(sim_display_headless_create(0, &d), SIM_OK);
    sim_display_flush(d, fb);
    ck_assert_uint_eq(sim_display_frame_count(d), 1);
    ck_assert_int_eq(sim_display_frame(d, 0, out), SIM_ERR_NOT_FOUND);
    sim_display_free(d);
    ck_assert_int_eq(sim_display_headless_create(65, &d), SIM_ERR_INVAL);
}
END_TEST

START_TEST(ascii_hash_rendering_puts_a_lit_pixel_at_its_row_and_column)
{
    uint8_t fb[FW_FB_BYTES];
    char text[FW_FB_HEIGHT * (FW_FB_WIDTH + 1) + 1];
    int n;

    frame_with_pixel(fb, 5, 9);
    ck_assert_uint_eq(sim_display_ascii_size(SIM_ASCII_HASH), sizeof(text));
    n = sim_display_ascii(fb, SIM_ASCII_HASH, text, sizeof(text));
    ck_assert_int_eq(n, (int)sizeof(text) - 1);
    ck_assert_int_eq(text[9 * (FW_FB_WIDTH + 1) + 5], '#');
    ck_assert_int_eq(text[9 * (FW_FB_WIDTH + 1) + 6], '.');
    ck_assert_int_eq(text[FW_FB_WIDTH], '\n');
    ck_assert_ptr_eq(strchr(text, '#'), &text[9 * (FW_FB_WIDTH + 1) + 5]);
    ck_assert_int_eq(sim_display_ascii(fb, SIM_ASCII_HASH, text, 10), SIM_ERR_TOO_BIG);
}
END_TEST

START_TEST(halfblock_rendering_uses_the_upper_or_lower_half_for_even_or_odd_rows)
{
    uint8_t fb[FW_FB_BYTES];
    char text[32 * (128 * 3 + 1) + 1];

    frame_with_pixel(fb, 0, 0); /* row 0: upper half of the first line */
    ck_assert_int_gt(sim_display_ascii(fb, SIM_ASCII_HALFBLOCK, text, sizeof(text)), 0);
    ck_assert_mem_eq(text, "\xe2\x96\x80 ", 4);
    frame_with_pixel(fb, 0, 1); /* row 1: lower half */
    ck_assert_int_gt(sim_display_ascii(fb, SIM_ASCII_HALFBLOCK, text, sizeof(text)), 0);
    ck_assert_mem_eq(text, "\xe2\x96\x84 ", 4);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_display");
    TCase *tc = tcase_create("display");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, the_display_keeps_the_last_frames_newest_first_and_counts_all);
    tcase_add_test(tc, a_counting_only_display_keeps_no_frame);
    tcase_add_test(tc, ascii_hash_rendering_puts_a_lit_pixel_at_its_row_and_column);
    tcase_add_test(tc, halfblock_rendering_uses_the_upper_or_lower_half_for_even_or_odd_rows);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
