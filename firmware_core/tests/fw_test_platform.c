/* placeholder, replaced by the test doubles */
int fw_test_platform_placeholder;
