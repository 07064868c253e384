# CTest registrations of `scansim demo` (included from app/tests/CMakeLists.txt):
#   scansim_demo_cli          the command-line contract without a terminal (unit)
#   scansim_demo_tmux_flow    add -> tag -> confirm, cancel, inventory, network cut, quit (tmux)
#   scansim_demo_tmux_signals SIGTERM, Ctrl-C, SIGSEGV and SIGABRT restore the terminal (tmux)
#   scansim_demo_tmux_layouts half blocks, braille, too small, resize, ASCII (tmux)
#   scansim_demo_tmux_errors  unreachable broker, bad keys and tags (tmux)
#   scansim_demo_tmux_flash   --flash and --broker: the outbox survives a power-off (tmux)
#   scansim_demo_tmux_mqtt5   MQTT 5, per-device layout, --id (tmux)
#   scansim_demo_tmux_tls     mutual TLS broker: direct link, registration acked (tmux)
#   scansim_demo_tmux_small   the README's first command at 80x24; resize to 100x30, 200x55 (tmux)
#   scansim_demo_tmux_race    --devices 3 --layout seed: one item registered by two scanners (tmux)
#   scansim_demo_tmux_offline why a scanner is offline: refused, broker gone (tmux)
#   scansim_demo_tmux_commands the command keys: status, lock, message, identify, reboot (tmux)
# The tmux tests skip (exit 77) when tmux is missing; each starts its own private mosquitto
# through scansim and its own tmux server, so they run in parallel.
add_test(NAME scansim_demo_cli
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/demo_cli_test.sh $<TARGET_FILE:scansim>)
set_tests_properties(scansim_demo_cli PROPERTIES LABELS unit TIMEOUT 60)
foreach(mode flow signals layouts errors flash mqtt5 tls small race offline commands)
  add_test(NAME scansim_demo_tmux_${mode}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/demo_tmux_test.sh $<TARGET_FILE:scansim>
                   ${MOSQUITTO_SUB} ${mode})
  set_tests_properties(scansim_demo_tmux_${mode} PROPERTIES
                       LABELS tmux TIMEOUT 120 SKIP_RETURN_CODE 77
                       ENVIRONMENT "MOSQUITTO_BIN=${MOSQUITTO_BIN}")
endforeach()
