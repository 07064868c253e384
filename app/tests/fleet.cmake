# fleet.cmake - CTest registrations of `scansim run` (the fleet). Included by
# app/tests/CMakeLists.txt. Each case starts its own broker(s) on free ports.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
foreach(case basic workers seed nobackend sigint usage unreachable operator qos2 commands)
  add_test(NAME fleet_run_${case}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/fleet_test.sh $<TARGET_FILE:scansim> ${case})
  set_tests_properties(fleet_run_${case} PROPERTIES LABELS broker TIMEOUT 90)
endforeach()
# Against RabbitMQ (its own node, ~15 s to start); label rabbitmq: ctest -L rabbitmq.
add_test(NAME fleet_run_rabbitmq
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/fleet_test.sh $<TARGET_FILE:scansim> rabbitmq)
set_tests_properties(fleet_run_rabbitmq PROPERTIES LABELS "broker;rabbitmq" TIMEOUT 180 COST 20)
# Supervision: a worker process and the embedded broker killed mid-run (supervise_test.sh).
foreach(case worker_killed broker_killed)
  add_test(NAME run_supervise_${case}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/supervise_test.sh $<TARGET_FILE:scansim> ${case})
  set_tests_properties(run_supervise_${case} PROPERTIES LABELS "broker;supervise" TIMEOUT 90)
endforeach()
# Shards and merge, several brokers (shard_test.sh).
foreach(case merge brokers)
  add_test(NAME run_shard_${case}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/shard_test.sh $<TARGET_FILE:scansim> ${case})
  set_tests_properties(run_shard_${case} PROPERTIES LABELS "broker;shard" TIMEOUT 90)
endforeach()
# Per-device identities against per-device ACLs (identity_test.sh).
foreach(case certs passwords)
  add_test(NAME run_identity_${case}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/identity_test.sh $<TARGET_FILE:scansim> ${case})
  set_tests_properties(run_identity_${case} PROPERTIES LABELS "broker;identity" TIMEOUT 120)
endforeach()
# Source addresses: --bind spreads the devices' local ends (bind_test.sh).
foreach(case spread usage)
  add_test(NAME run_bind_${case}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/bind_test.sh $<TARGET_FILE:scansim> ${case})
  set_tests_properties(run_bind_${case} PROPERTIES LABELS "broker;bind" TIMEOUT 60)
endforeach()
# Two shards on two "machines" (network namespaces) against a broker on a third, merged;
# where namespaces cannot be made the test says so and falls back to source addresses
# (netns_test.sh). The fallback case runs that path on purpose.
foreach(case netns fallback)
  add_test(NAME run_netns_shards_${case}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/netns_test.sh $<TARGET_FILE:scansim> ${case})
  set_tests_properties(run_netns_shards_${case} PROPERTIES LABELS "broker;netns;shard" TIMEOUT 60)
endforeach()
