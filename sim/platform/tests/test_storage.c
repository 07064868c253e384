/*
 * test_storage.c - the storage port: file-backed (round trip, atomic replace, survives
 * a new handle), memory-backed, none; missing keys and bad keys.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fw/fw_device.h"
#include "sim/err.h"
#include "sim/fs.h"
#include "sim/storage.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sim-storage-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(a_value_written_to_a_file_store_reads_back_from_a_new_handle)
{
    struct sim_storage *s;
    char dir[400], buf[64];
    size_t len = 0;
    const unsigned char blob[] = { 0, 1, 2, 255, 'x' };

    make_tmpdir();
    snprintf(dir, sizeof(dir), "%s/dev-1/nested", tmpdir);
    ck_assert_int_eq(sim_storage_file_open(dir, false, &s), SIM_OK);
    ck_assert_str_eq(sim_storage_dir(s), dir);
    ck_assert_int_eq(sim_storage_write(s, "outbox", blob, sizeof(blob)), FW_OK);
    sim_storage_free(s);
    ck_assert_int_eq(sim_storage_file_open(dir, true, &s), SIM_OK);
    ck_assert_int_eq(sim_storage_read(s, "outbox", buf, sizeof(buf), &len), FW_OK);
    ck_assert_uint_eq(len, sizeof(blob));
    ck_assert_mem_eq(buf, blob, sizeof(blob));
    sim_storage_free(s);
    remove_tree(tmpdir);
}
END_TEST

START_TEST(a_rewrite_replaces_the_whole_value_and_leaves_no_temporary_file)
{
    struct sim_storage *s;
    char buf[64], path[400];
    size_t len = 0;
    DIR *d;
    struct dirent *e;
    int files = 0;

    make_tmpdir();
    ck_assert_int_eq(sim_storage_file_open(tmpdir, true, &s), SIM_OK);
    ck_assert_int_eq(sim_storage_write(s, "seq", "a much longer first value", 25), FW_OK);
    ck_assert_int_eq(sim_storage_write(s, "seq", "short", 5), FW_OK);
    ck_assert_int_eq(sim_storage_read(s, "seq", buf, sizeof(buf), &len), FW_OK);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(buf, "short", 5);
    d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        ck_assert_str_eq(e->d_name, "seq"); /* no seq.tmp left behind */
    }
    closedir(d);
    ck_assert_int_eq(files, 1);
    /* A stale temporary file (a crash between write and rename) does not hide the value. */
    snprintf(path, sizeof(path), "%s/seq.tmp", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("torn", f);
    fclose(f);
    ck_assert_int_eq(sim_storage_read(s, "seq", buf, sizeof(buf), &len), FW_OK);
    ck_assert_mem_eq(buf, "short", 5);
    sim_storage_free(s);
    remove_tree(tmpdir);
}
END_TEST

START_TEST(a_missing_key_is_not_found_in_every_kind_of_store)
{
    struct sim_storage *s[3];
    char buf[8];
    size_t len;

    make_tmpdir();
    ck_assert_int_eq(sim_storage_file_open(tmpdir, false, &s[0]), SIM_OK);
    ck_assert_int_eq(sim_storage_memory_open(&s[1]), SIM_OK);
    ck_assert_int_eq(sim_storage_none_open(&s[2]), SIM_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sim_storage_read(s[i], "outbox", buf, sizeof(buf), &len),
                         FW_ERR_NOT_FOUND);
        sim_storage_free(s[i]);
    }
    remove_tree(tmpdir);
}
END_TEST

START_TEST(a_value_larger_than_the_buffer_is_refused_with_its_size)
{
    struct sim_storage *s[2];
    char buf[4];
    size_t len = 0;

    make_tmpdir();
    ck_assert_int_eq(sim_storage_file_open(tmpdir, false, &s[0]), SIM_OK);
    ck_assert_int_eq(sim_storage_memory_open(&s[1]), SIM_OK);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(sim_storage_write(s[i], "k", "0123456789", 10), FW_OK);
        ck_assert_int_eq(sim_storage_read(s[i], "k", buf, sizeof(buf), &len), FW_ERR_TOO_BIG);
        ck_assert_uint_eq(len, 10);
        sim_storage_free(s[i]);
    }
    remove_tree(tmpdir);
}
END_TEST

START_TEST(keys_that_could_leave_the_folder_are_refused)
{
    struct sim_storage *s;
    char buf[4];
    size_t len;

    make_tmpdir();
    ck_assert_int_eq(sim_storage_file_open(tmpdir, false, &s), SIM_OK);
    ck_assert_int_eq(sim_storage_write(s, "../evil", "x", 1), FW_ERR_INVAL);
    ck_assert_int_eq(sim_storage_write(s, "", "x", 1), FW_ERR_INVAL);
    ck_assert_int_eq(sim_storage_write(s, "a/b", "x", 1), FW_ERR_INVAL);
    ck_assert_int_eq(sim_storage_read(s, ".hidden", buf, sizeof(buf), &len), FW_ERR_INVAL);
    sim_storage_free(s);
    remove_tree(tmpdir);
}
END_TEST

START_TEST(a_memory_store_keeps_several_keys_and_replaces_values)
{
    struct sim_storage *s;
    char buf[16];
    size_t len;

    ck_assert_int_eq(sim_storage_memory_open(&s), SIM_OK);
    ck_assert_int_eq(sim_storage_write(s, "a", "1", 1), FW_OK);
    ck_assert_int_eq(sim_storage_write(s, "b", "22", 2), FW_OK);
    ck_assert_int_eq(sim_storage_write(s, "a", "333", 3), FW_OK);
    ck_assert_int_eq(sim_storage_write(s, "empty", NULL, 0), FW_OK);
    ck_assert_int_eq(sim_storage_read(s, "a", buf, sizeof(buf), &len), FW_OK);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(buf, "333", 3);
    ck_assert_int_eq(sim_storage_read(s, "b", buf, sizeof(buf), &len), FW_OK);
    ck_assert_mem_eq(buf, "22", 2);
    ck_assert_int_eq(sim_storage_read(s, "empty", buf, sizeof(buf), &len), FW_OK);
    ck_assert_uint_eq(len, 0);
    sim_storage_free(s);
}
END_TEST

START_TEST(a_none_store_accepts_writes_and_forgets_them)
{
    struct sim_storage *s;
    char buf[4];
    size_t len;

    ck_assert_int_eq(sim_storage_none_open(&s), SIM_OK);
    ck_assert_int_eq(sim_storage_write(s, "a", "1", 1), FW_OK);
    ck_assert_int_eq(sim_storage_read(s, "a", buf, sizeof(buf), &len), FW_ERR_NOT_FOUND);
    ck_assert_ptr_null(sim_storage_dir(s));
    sim_storage_free(s);
}
END_TEST

/* sim/fs.h: mkdir -p, the whole of a file within a limit, rm -rf. */
START_TEST(folders_are_made_read_whole_and_removed_with_their_contents)
{
    char root[] = "/tmp/sim-fs-XXXXXX", deep[128], file[160];
    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(deep, sizeof deep, "%s/a/b/c", root);
    ck_assert_int_eq(sim_fs_mkdir_p(deep), 0);
    ck_assert_int_eq(sim_fs_mkdir_p(deep), 0); /* there already: fine */
    snprintf(file, sizeof file, "%s/text", deep);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 3000; i++) /* 30,000 bytes: the buffer grows */
        fputs("0123456789", f);
    fclose(f);
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(sim_fs_read_all(file, 30000, &text, &len), 0);
    ck_assert_uint_eq(len, 30000);
    ck_assert_uint_eq(strlen(text), 30000);
    free(text);
    errno = 0;
    ck_assert_int_eq(sim_fs_read_all(file, 29999, &text, &len), -1); /* one byte too many */
    ck_assert_int_eq(errno, EFBIG);
    ck_assert_ptr_null(text);
    ck_assert_int_eq(sim_fs_read_all("/nonexistent/scansim", 100, &text, NULL), -1);
    ck_assert_int_eq(errno, ENOENT);
    sim_fs_remove_tree(root);
    ck_assert_int_ne(access(root, F_OK), 0);
    sim_fs_remove_tree(NULL); /* nothing to do */
    sim_fs_remove_tree("");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_storage");
    TCase *tc = tcase_create("storage");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, a_value_written_to_a_file_store_reads_back_from_a_new_handle);
    tcase_add_test(tc, a_rewrite_replaces_the_whole_value_and_leaves_no_temporary_file);
    tcase_add_test(tc, a_missing_key_is_not_found_in_every_kind_of_store);
    tcase_add_test(tc, a_value_larger_than_the_buffer_is_refused_with_its_size);
    tcase_add_test(tc, keys_that_could_leave_the_folder_are_refused);
    tcase_add_test(tc, a_memory_store_keeps_several_keys_and_replaces_values);
    tcase_add_test(tc, a_none_store_accepts_writes_and_forgets_them);
    tcase_add_test(tc, folders_are_made_read_whole_and_removed_with_their_contents);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
