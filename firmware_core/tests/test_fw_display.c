/*
 * test_fw_display.c - the built-in font, text drawing in the SSD1306 page layout, the
 * screens as pixels (compared with ASCII-art pictures kept here), and lazy rendering:
 * at most one flush per event, none when nothing changed, none at all when headless.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw_display.h"
#include "fw_test_platform.h"

static struct fwt_platform P;
static struct fw_device D;
static uint8_t fb[FW_FB_BYTES];

static void start_device(bool with_display)
{
    fwt_init(&P, with_display);
    struct fw_device_config cfg;
    fw_device_config_defaults(&cfg);
    cfg.device_id = "scanner-1";
    ck_assert_int_eq(fw_device_init(&D, &cfg, &P.ports), FW_OK);
    fw_device_start(&D);
}

static void assert_picture(const uint8_t *frame, int x, int y, int w, int h, const char *want)
{
    char got[(128 + 1) * 64 + 1];
    fwt_ascii(frame, x, y, w, h, got);
    ck_assert_msg(strcmp(got, want) == 0, "picture differs:\n--- got\n%s--- want\n%s", got, want);
}

START_TEST(the_idle_screen_shows_an_inverted_title_and_the_pending_count)
{
    start_device(true);
    fwt_online(&P, &D, false);
    /* Title bar, first 7 cells: "SCANNER" dark on lit. */
    assert_picture(P.frame, 0, 0, 42, 8,
                   "#....##...###...##.###.#.###.#.....#....##\n"
                   ".#####.###.#.###.#.###.#.###.#.#####.###.#\n"
                   ".#####.#####.###.#..##.#..##.#.#####.###.#\n"
                   "#...##.#####.###.#.#.#.#.#.#.#....##....##\n"
                   "####.#.#####.....#.##..#.##..#.#####.#.###\n"
                   "####.#.###.#.###.#.###.#.###.#.#####.##.##\n"
                   "....###...##.###.#.###.#.###.#.....#.###.#\n"
                   "##########################################\n");
    /* Text row 3: "pending 0". */
    assert_picture(P.frame, 0, 24, 54, 8,
                   "......................#...#......................###..\n"
                   "......................#..............####.......#...#.\n"
                   "####...###..#.##...##.#..##...#.##..#...#.......#..##.\n"
                   "#...#.#...#.##..#.#..##...#...##..#.#...#.......#.#.#.\n"
                   "####..#####.#...#.#...#...#...#...#..####.......##..#.\n"
                   "#.....#.....#...#.#...#...#...#...#.....#.......#...#.\n"
                   "#......###..#...#..####..###..#...#..###.........###..\n"
                   "......................................................\n");
}
END_TEST

START_TEST(the_title_bar_says_online_or_offline_at_the_right_edge)
{
    start_device(true);
    /* "OFFLINE" is 7 cells: columns 14..20, pixels 84..125. Its 'O' at 84..88. */
    assert_picture(P.frame, 84, 0, 6, 7,
                   "#...##\n"
                   ".###.#\n"
                   ".###.#\n"
                   ".###.#\n"
                   ".###.#\n"
                   ".###.#\n"
                   "#...##\n");
    fwt_online(&P, &D, false);
    /* "ONLINE" is 6 cells: its 'O' starts at 90, the 'N' at 96. */
    assert_picture(P.frame, 96, 0, 6, 7,
                   ".###.#\n"
                   ".###.#\n"
                   "..##.#\n"
                   ".#.#.#\n"
                   ".##..#\n"
                   ".###.#\n"
                   ".###.#\n");
}
END_TEST

START_TEST(a_glyph_lands_in_its_text_cell_in_normal_and_inverted_form)
{
    fw_display__clear(fb);
    fw_display__text(fb, 20, 7, "A", false);
    assert_picture(fb, 120, 56, 8, 8,
                   ".###....\n"
                   "#...#...\n"
                   "#...#...\n"
                   "#...#...\n"
                   "#####...\n"
                   "#...#...\n"
                   "#...#...\n"
                   "........\n");
    fw_display__fill_row(fb, 1, true);
    fw_display__text(fb, 0, 1, "A", true);
    assert_picture(fb, 0, 8, 7, 8,
                   "#...###\n"
                   ".###.##\n"
                   ".###.##\n"
                   ".###.##\n"
                   ".....##\n"
                   ".###.##\n"
                   ".###.##\n"
                   "#######\n");
}
END_TEST

START_TEST(every_printable_glyph_is_distinct_and_keeps_the_bottom_row_dark)
{
    for (int c = 0; c < 95; c++) {
        bool lit = false;
        for (int x = 0; x < FW_GLYPH_W; x++) {
            lit |= fw_font5x7[c][x] != 0;
            ck_assert_msg((fw_font5x7[c][x] & 0x80) == 0, "glyph 0x%02x row 7", c + 0x20);
        }
        ck_assert_msg(lit == (c != 0), "glyph 0x%02x lit=%d", c + 0x20, lit);
        for (int k = 0; k < c; k++)
            ck_assert_msg(memcmp(fw_font5x7[c], fw_font5x7[k], FW_GLYPH_W) != 0,
                          "glyphs 0x%02x and 0x%02x are the same", c + 0x20, k + 0x20);
    }
}
END_TEST

START_TEST(text_past_the_last_column_is_clipped_not_wrapped)
{
    fw_display__clear(fb);
    fw_display__text(fb, 18, 2, "ABCDEFGH", false);
    /* Cells 18..20 drawn; nothing on the next row, nothing past pixel 125. */
    for (int page = 0; page < 8; page++)
        for (int x = 0; x < FW_FB_WIDTH; x++) {
            bool inside = page == 2 && x >= 18 * FW_CELL_W && x < 21 * FW_CELL_W;
            if (!inside)
                ck_assert_msg(fb[page * FW_FB_WIDTH + x] == 0, "page %d x %d", page, x);
        }
    ck_assert_int_ne(fb[2 * FW_FB_WIDTH + 20 * FW_CELL_W], 0); /* the 'C' */
    /* Rows and columns outside the screen are ignored. */
    fw_display__text(fb, 0, 8, "A", false);
    fw_display__text(fb, -1, 0, "A", false);
    fw_display__text(fb, 21, 0, "A", false);
    for (int x = 0; x < FW_FB_WIDTH; x++)
        ck_assert_int_eq(fb[x], 0);
}
END_TEST

START_TEST(bytes_outside_printable_ascii_are_drawn_as_question_marks)
{
    uint8_t want[FW_FB_BYTES];
    fw_display__clear(fb);
    fw_display__clear(want);
    fw_display__text(fb, 0, 0, "\xc3\xa4\x01", false);
    fw_display__text(want, 0, 0, "???", false);
    ck_assert_mem_eq(fb, want, FW_FB_BYTES);
}
END_TEST

START_TEST(an_event_flushes_at_most_one_frame_and_an_idle_tick_none)
{
    start_device(true);
    int before = P.flushes;
    ck_assert_int_eq(before, 1); /* start drew the first frame */
    fw_device_on_connected(&D, false);
    ck_assert_int_eq(P.flushes, before + 1);
    /* The first SUBACKs change nothing visible; the last one puts ONLINE in the title. */
    for (int i = 0; i < FW_SUBSCRIPTIONS - 1; i++) {
        fw_device_on_subscribed(&D, P.sub_token[i], 1);
        ck_assert_int_eq(P.flushes, before + 1);
    }
    fw_device_on_subscribed(&D, P.sub_token[FW_SUBSCRIPTIONS - 1], 1);
    ck_assert_int_eq(P.flushes, before + 2);
    before++;
    char buf[128];
    fwt_item_json(buf, sizeof buf, 5, "Box", 1);
    fw_device_on_message(&D, fw_device_topic_item_registration(&D), buf, strlen(buf), 1, false);
    ck_assert_int_eq(P.flushes, before + 2);
    for (int i = 0; i < 100; i++) {
        P.now += 10;
        fw_device_tick(&D, P.now);
    }
    ck_assert_int_eq(P.flushes, before + 2);
    /* A duplicate changes nothing visible: no frame. */
    fw_device_on_message(&D, fw_device_topic_item_registration(&D), buf, strlen(buf), 1, true);
    ck_assert_int_eq(P.flushes, before + 2);
}
END_TEST

START_TEST(a_headless_device_renders_only_when_its_framebuffer_is_asked_for)
{
    /* The same events on a device with a display and on a headless one. */
    static struct fwt_platform P2;
    static struct fw_device D2;
    start_device(true);
    fwt_online(&P, &D, false);

    fwt_init(&P2, false);
    struct fw_device_config cfg;
    fw_device_config_defaults(&cfg);
    cfg.device_id = "scanner-1";
    ck_assert_int_eq(fw_device_init(&D2, &cfg, &P2.ports), FW_OK);
    fw_device_start(&D2);
    fwt_online(&P2, &D2, false);
    ck_assert_int_eq(P2.flushes, 0);
    ck_assert_mem_eq(fw_device_framebuffer(&D2), P.frame, FW_FB_BYTES);
    /* And it follows the state afterwards. */
    uint8_t tag[4] = {1, 2, 3, 4};
    fw_device_on_button(&D, FW_BUTTON_MODE);
    fw_device_on_button(&D2, FW_BUTTON_MODE);
    fw_device_on_tag(&D, tag, 4);
    fw_device_on_tag(&D2, tag, 4);
    ck_assert_mem_eq(fw_device_framebuffer(&D2), P.frame, FW_FB_BYTES);
    ck_assert_mem_eq(fw_device_framebuffer(&D), P.frame, FW_FB_BYTES);
}
END_TEST

static Suite *display_suite(void)
{
    Suite *s = suite_create("fw_display");
    TCase *t = tcase_create("display");
    tcase_add_test(t, the_idle_screen_shows_an_inverted_title_and_the_pending_count);
    tcase_add_test(t, the_title_bar_says_online_or_offline_at_the_right_edge);
    tcase_add_test(t, a_glyph_lands_in_its_text_cell_in_normal_and_inverted_form);
    tcase_add_test(t, every_printable_glyph_is_distinct_and_keeps_the_bottom_row_dark);
    tcase_add_test(t, text_past_the_last_column_is_clipped_not_wrapped);
    tcase_add_test(t, bytes_outside_printable_ascii_are_drawn_as_question_marks);
    tcase_add_test(t, an_event_flushes_at_most_one_frame_and_an_idle_tick_none);
    tcase_add_test(t, a_headless_device_renders_only_when_its_framebuffer_is_asked_for);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(display_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
