# dash.cmake - the dashboard's tests (app/dash_*.c). Included by
# app/tests/CMakeLists.txt.
#   dash_unit        Check suite: request rules, push JSON, Prometheus text (no server)
#   dash_prometheus  Debian's prometheus scrapes a live `scansim run --http` (~10 s)
#   dash_http        a live run's dashboard answers every bad request with a status and reason
#   dash_browser     headless Chromium drives the pages of a live run, opens its report
#                    and those of scansim test and bench (~30 s)
set(DASH_SRC ${CMAKE_CURRENT_SOURCE_DIR}/..)
add_executable(test_dash test_dash.c)
target_link_libraries(test_dash PRIVATE scansim_build)
target_include_directories(test_dash PRIVATE ${DASH_SRC})
target_compile_definitions(test_dash PRIVATE _GNU_SOURCE)
target_link_libraries(test_dash PRIVATE scansim_common PkgConfig::CHECK
                      Threads::Threads)
add_test(NAME dash_unit COMMAND test_dash)
set_tests_properties(dash_unit PROPERTIES LABELS unit TIMEOUT 60)

add_test(NAME dash_prometheus
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dash_prometheus_test.sh $<TARGET_FILE:scansim>)
set_tests_properties(dash_prometheus PROPERTIES LABELS "prometheus;broker" TIMEOUT 120)
add_test(NAME dash_browser
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/dash_browser_test.py
                 $<TARGET_FILE:scansim> ${CMAKE_BINARY_DIR}/reports
                 ${CMAKE_SOURCE_DIR}/scenarios/happy_path.scn)
set_tests_properties(dash_browser PROPERTIES LABELS "browser;broker" TIMEOUT 180)

# dash_http: every bad request to a live dashboard gets its status and reason (~15 s)
add_test(NAME dash_http
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dash_http_test.sh $<TARGET_FILE:scansim>)
set_tests_properties(dash_http PROPERTIES LABELS broker TIMEOUT 120)
