/*
 * test_security_cli.c - the scansim program (`scansim run`) against TLS brokers, as a user
 * runs it: --broker ssl://... --cafile, -u/-P or --cert/--key. The program is started as a
 * child process (its stdout and stderr captured together), with its own private mosquitto
 * (hx_broker) and a throw-away PKI (ci/make-pki.sh) per test.
 *
 * Checks what a user sees: exit code 0 and the summary when it works; exit code 3 with words
 * naming the broker and the reason when the broker refuses (wrong password, expired or
 * foreign certificate, plain TCP on the TLS port); exit code 2 for contradictory flags; the
 * password never appears in the output; the devices back off (broker log).
 *
 * `scansim run` gives every device and its backend the same credentials (one -u/-P, one
 * --cert), so these brokers have no per-device ACL (the ACL is covered with per-device
 * identities in test_security_tls.c).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sec_util.h"

#ifndef SCANSIM_BIN
#error "SCANSIM_BIN (path of the scansim program) must be defined by CMake"
#endif

#define FLEET_USER "fleet"
#define FLEET_PASSWORD "Fleet-Pw-5e21"
#define WRONG_PASSWORD "Wr0ng-Fleet-Secret"

static char pki[256];

static void setup(void)
{
    sec_pki_make(pki, sizeof pki);
}

static void teardown(void)
{
    sec_rm_rf(pki);
}

struct run_result {
    int exit_code;  /* -1 when killed */
    char *output;   /* stdout + stderr */
    uint64_t ms;
};

/* Run scansim with args (NULL-terminated), up to timeout_s; output captured. */
static struct run_result run_scansim(const char *const *args, int timeout_s)
{
    char out_path[300];
    snprintf(out_path, sizeof out_path, "%s/scansim.out", pki);
    const char *argv[40];
    int n = 0;
    argv[n++] = SCANSIM_BIN;
    for (int i = 0; args[i] && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    uint64_t t0 = sec_now_ms();
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(SCANSIM_BIN, (char *const *)argv);
        _exit(127);
    }
    struct run_result r = {.exit_code = -1};
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        if (sec_now_ms() > t0 + (uint64_t)timeout_s * 1000u) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        sec_nap_ms(20);
    }
    r.ms = sec_now_ms() - t0;
    FILE *f = fopen(out_path, "rb");
    ck_assert(f != NULL);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    r.output = calloc(1, (size_t)len + 1);
    ck_assert(r.output != NULL);
    ck_assert_int_eq(fread(r.output, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    /* What the user saw, in the test log. */
    fprintf(stderr, "---- %s: scansim exited %d after %llu ms; output:\n%s----\n", tcase_name(),
            r.exit_code, (unsigned long long)r.ms, r.output);
    return r;
}

#define assert_has(text, words)                                                          \
    ck_assert_msg(strstr((text), (words)) != NULL, "expected \"%s\" in the output", (words))
#define assert_lacks(text, words)                                                        \
    ck_assert_msg(strstr((text), (words)) == NULL, "\"%s\" must not appear in the output", \
                  (words))

/* ------------------------------------------------------------ it works */

START_TEST(run_over_tls_with_a_password_registers_everything)
{
    struct hx_broker *b = sec_broker_start_open(SEC_BROKER_TLS_PASSWORD, pki, FLEET_USER,
                                                FLEET_PASSWORD);
    const char *args[] = {"run", "--broker", hx_broker_uri(b), "--cafile",
                          sec_path(pki, "ca.crt"), "-u", FLEET_USER, "-P", FLEET_PASSWORD,
                          "-n", "3", "--items", "9", "--workers", "2", NULL};
    struct run_result r = run_scansim(args, 60);
    ck_assert_int_eq(r.exit_code, 0);
    /* two worker processes: scansim itself, as scansim-worker has no TLS */
    assert_has(r.output, "2 worker processes");
    assert_has(r.output, "exit code                          0");
    assert_has(r.output, "9 registered");
    assert_lacks(r.output, FLEET_PASSWORD);
    ck_assert(!sec_file_contains(hx_broker_log_path(b), FLEET_PASSWORD));
    free(r.output);
    hx_broker_free(b);
}
END_TEST

START_TEST(run_over_mutual_tls_registers_everything)
{
    struct hx_broker *b = sec_broker_start_open(SEC_BROKER_MTLS, pki, NULL, NULL);
    const char *args[] = {"run", "--broker", hx_broker_uri(b), "--cafile",
                          sec_path(pki, "ca.crt"), "--cert", sec_path(pki, "scanner-1.crt"),
                          "--key", sec_path(pki, "scanner-1.key"), "-n", "3", "--items", "9",
                          NULL};
    struct run_result r = run_scansim(args, 60);
    ck_assert_int_eq(r.exit_code, 0);
    assert_has(r.output, "9 registered");
    assert_has(r.output, "0 connect failures");
    free(r.output);
    hx_broker_free(b);
}
END_TEST

/* The benchmark's own clients (raw pair, and each `scansim run` it starts) get the same
   TLS files and credentials as the user gave it. */
START_TEST(bench_over_tls_with_a_password_measures_the_raw_pair_and_the_fleet)
{
    struct hx_broker *b = sec_broker_start_open(SEC_BROKER_TLS_PASSWORD, pki, FLEET_USER,
                                                FLEET_PASSWORD);
    const char *args[] = {"bench", "--broker", hx_broker_uri(b), "--cafile",
                          sec_path(pki, "ca.crt"), "-u", FLEET_USER, "-P", FLEET_PASSWORD,
                          "--devices", "3", "--items-per-device", "3", "--min-items", "9",
                          "--raw-messages", "2000", "--repeat", "1", NULL};
    struct run_result r = run_scansim(args, 90);
    ck_assert_int_eq(r.exit_code, 0);
    assert_has(r.output, "raw ceiling (the faster per round): ");
    assert_has(r.output, "3 devices, mosquitto: exit 0,");
    assert_has(r.output, "3 devices, paho: exit 0,");
    assert_has(r.output, "lost 0, twice 0");
    assert_lacks(r.output, FLEET_PASSWORD);
    ck_assert(!sec_file_contains(hx_broker_log_path(b), FLEET_PASSWORD));
    free(r.output);
    hx_broker_free(b);
}
END_TEST

/* ------------------------------------------------------------ refused */

START_TEST(run_with_a_wrong_password_exits_3_without_printing_it)
{
    struct hx_broker *b = sec_broker_start_open(SEC_BROKER_TLS_PASSWORD, pki, FLEET_USER,
                                                FLEET_PASSWORD);
    /* With the backend: it connects first and is refused. */
    const char *args[] = {"run", "--broker", hx_broker_uri(b), "--cafile",
                          sec_path(pki, "ca.crt"), "-u", FLEET_USER, "-P", WRONG_PASSWORD,
                          "-n", "2", "--items", "2", "--connect-timeout", "8s", NULL};
    struct run_result r = run_scansim(args, 60);
    ck_assert_int_eq(r.exit_code, 3);
    assert_has(r.output, "backend could not connect");
    assert_has(r.output, hx_broker_uri(b));
    assert_has(r.output, "user name and password");
    assert_lacks(r.output, WRONG_PASSWORD);
    free(r.output);

    /* Devices only (--no-backend): each device is refused, backs off, and the summary
       names the reason. */
    int before = sec_log_connections(b);
    const char *args2[] = {"run", "--broker", hx_broker_uri(b), "--cafile",
                           sec_path(pki, "ca.crt"), "-u", FLEET_USER, "-P", WRONG_PASSWORD,
                           "-n", "2", "--no-backend", "--connect-timeout", "8s", NULL};
    r = run_scansim(args2, 60);
    int attempts = sec_log_connections(b) - before;
    fprintf(stderr, "%d connection attempts by 2 devices in %llu ms\n", attempts,
            (unsigned long long)r.ms);
    ck_assert_int_eq(r.exit_code, 3);
    assert_has(r.output, "refused: not authorised (CONNACK 5)");
    assert_has(r.output, "check the user name and password");
    assert_lacks(r.output, WRONG_PASSWORD);
    ck_assert(!sec_file_contains(hx_broker_log_path(b), WRONG_PASSWORD));
    ck_assert_msg(attempts >= 2 * 2 && attempts <= 2 * 6,
                  "2 devices made %d attempts in %llu ms (back-off expects 3 or 4 each)",
                  attempts, (unsigned long long)r.ms);
    free(r.output);
    hx_broker_free(b);
}
END_TEST

static void refused_certificate(const char *cert, const char *key)
{
    struct hx_broker *b = sec_broker_start_open(SEC_BROKER_MTLS, pki, NULL, NULL);
    const char *args[] = {"run", "--broker", hx_broker_uri(b), "--cafile",
                          sec_path(pki, "ca.crt"), "--cert", sec_path(pki, cert), "--key",
                          sec_path(pki, key), "-n", "2", "--items", "2", "--connect-timeout",
                          "8s", NULL};
    struct run_result r = run_scansim(args, 60);
    ck_assert_int_eq(r.exit_code, 3);
    assert_has(r.output, "backend could not connect");
    assert_has(r.output, hx_broker_uri(b));
    free(r.output);
    const char *args2[] = {"run", "--broker", hx_broker_uri(b), "--cafile",
                           sec_path(pki, "ca.crt"), "--cert", sec_path(pki, cert), "--key",
                           sec_path(pki, key), "-n", "2", "--no-backend",
                           "--connect-timeout", "8s", NULL};
    r = run_scansim(args2, 60);
    ck_assert_int_eq(r.exit_code, 3);
    /* TLS 1.3: the broker's alert comes after the client's handshake ended, so the words
       name it ("the broker refused the device's certificate") or only the failed session. */
    assert_has(r.output, "failed: ");
    assert_has(r.output, "--cert/--key");
    assert_has(r.output, "0/2");
    ck_assert(sec_file_contains(hx_broker_log_path(b), "certificate verify failed"));
    free(r.output);
    hx_broker_free(b);
}

START_TEST(run_with_an_expired_certificate_exits_3)
{
    refused_certificate("expired.crt", "expired.key");
}
END_TEST

START_TEST(run_with_a_foreign_ca_certificate_exits_3)
{
    refused_certificate("foreign.crt", "foreign.key");
}
END_TEST

START_TEST(run_with_plain_tcp_on_the_tls_port_exits_3)
{
    struct hx_broker *b = sec_broker_start_open(SEC_BROKER_TLS_PASSWORD, pki, FLEET_USER,
                                                FLEET_PASSWORD);
    char uri[64];
    snprintf(uri, sizeof uri, "tcp://127.0.0.1:%u", (unsigned)hx_broker_port(b));
    const char *args[] = {"run", "--broker", uri, "-u", FLEET_USER, "-P", FLEET_PASSWORD,
                          "-n", "1", "--no-backend", "--connect-timeout", "6s", NULL};
    struct run_result r = run_scansim(args, 60);
    ck_assert_int_eq(r.exit_code, 3);
    assert_has(r.output, uri);
    assert_has(r.output, "failed");
    assert_lacks(r.output, FLEET_PASSWORD);
    ck_assert(sec_file_contains(hx_broker_log_path(b), "wrong version number"));
    free(r.output);
    hx_broker_free(b);
}
END_TEST

/* ------------------------------------------------------------ flags */

START_TEST(contradictory_tls_flags_exit_2_before_connecting)
{
    struct {
        const char *args[12];
        const char *words;
    } cases[] = {
        {{"run", "--broker", "ssl://127.0.0.1:1", "--cert", "x.crt", NULL},
         "--cert and --key go together"},
        {{"run", "--broker", "tcp://127.0.0.1:1", "--cafile", "ca.crt", NULL},
         "need an ssl:// broker URI"},
        {{"run", "--broker", "ssl://127.0.0.1:1", "-P", WRONG_PASSWORD, NULL},
         "-P/--password needs -u/--username"},
        {{"run", "--cafile", "ca.crt", "-u", FLEET_USER, "-P", WRONG_PASSWORD, NULL},
         "TLS and user options need --broker"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct run_result r = run_scansim(cases[i].args, 30);
        ck_assert_int_eq(r.exit_code, 2);
        assert_has(r.output, cases[i].words);
        assert_lacks(r.output, WRONG_PASSWORD);
        free(r.output);
    }
}
END_TEST

/* ------------------------------------------------------------ the broker refuses items */

/* MQTT 5, a broker whose ACL does not let the backend publish items: the run names the
   refusal and the reason code, counts every item as refused and lost, does not wait out
   the grace period for them, and exits 1. */
START_TEST(run_mqtt5_names_the_items_the_broker_refuses)
{
    struct hx_broker_opts bo = {.persistence = true,
                                .acl = "topic read scanners/#\n"
                                       "topic write scanners/+/item_registered\n"
                                       "topic write scanners/+/inventory/query\n"
                                       "topic write scanners/+/status\n"};
    struct hx_broker *b = NULL;
    ck_assert_msg(hx_broker_start(&bo, &b) == HX_OK, "%s", hx_broker_last_error());
    char json[300];
    snprintf(json, sizeof json, "%s/run.json", pki);
    const char *args[] = {"run", "--broker", hx_broker_uri(b), "-V", "5", "-n", "3",
                          "--items", "12", "--grace", "30s", "--json", json, NULL};
    struct run_result r = run_scansim(args, 60);
    ck_assert_int_eq(r.exit_code, 1);
    assert_has(r.output, "items lost                         12");
    assert_has(r.output, "items refused by the broker        12 (MQTT 5 reason code 0x87, "
                         "not authorized)");
    assert_has(r.output, "check its ACL");
    ck_assert_msg(r.ms < 25000, "the run waited for refused items: %llu ms",
                  (unsigned long long)r.ms);
    ck_assert(sec_file_contains(json, "\"items_refused\":\t12,"));
    ck_assert(sec_file_contains(json, "\"refused_reason_code\":\t135,"));
    free(r.output);
    hx_broker_free(b);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("security_cli");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"cli_tls_password", run_over_tls_with_a_password_registers_everything},
        {"cli_mtls", run_over_mutual_tls_registers_everything},
        {"cli_bench_tls_password", bench_over_tls_with_a_password_measures_the_raw_pair_and_the_fleet},
        {"cli_wrong_password", run_with_a_wrong_password_exits_3_without_printing_it},
        {"cli_expired_certificate", run_with_an_expired_certificate_exits_3},
        {"cli_foreign_ca", run_with_a_foreign_ca_certificate_exits_3},
        {"cli_plain_tcp_on_tls_port", run_with_plain_tcp_on_the_tls_port_exits_3},
        {"cli_flags", contradictory_tls_flags_exit_2_before_connecting},
        {"cli_mqtt5_refused_items", run_mqtt5_names_the_items_the_broker_refuses},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        /* Unchecked: runs in the runner process, so the PKI is removed even when a failed
           assertion ends the test's own process early. */
        tcase_add_unchecked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 110);
        _tcase_add_test(tc, cases[i].test, 0, 0, 0, 1);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cli_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
