# Runs one libFuzzer target for a fixed number of inputs from a fixed seed over a fresh
# corpus, so a ctest run is repeatable. cmake -DFUZZER=... -DWORK_DIR=... -DH5AD_SEED=...
# -DRUNS=... -P run_fuzzer.cmake
foreach(var FUZZER WORK_DIR RUNS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: ${var} not set")
  endif()
endforeach()
if(NOT EXISTS ${FUZZER})
  message(FATAL_ERROR "${FUZZER} is not built (build the uce_fuzzers target)")
endif()

file(REMOVE_RECURSE ${WORK_DIR})
set(seeds ${WORK_DIR}/seeds)
set(corpus ${WORK_DIR}/corpus)
file(MAKE_DIRECTORY ${seeds} ${corpus})

# Seeds: small valid inputs of each text format, and a real .h5ad.
file(WRITE ${seeds}/cellranger3.mtx
  "%%MatrixMarket matrix coordinate integer general\n%metadata_json: {}\n"
  "4 3 6\n1 1 5\n3 1 2\n2 2 7\n4 2 1\n1 3 3\n4 3 9\n")
file(WRITE ${seeds}/real.mtx
  "%%MatrixMarket matrix coordinate real general\n%\n3 2 4\n1 1 0.5\n2 1 1.5e+01\n3 2 2\n1 2 7\n")
file(WRITE ${seeds}/pattern.mtx "%%MatrixMarket matrix coordinate pattern general\n2 2 2\n1 1\n2 2\n")
file(WRITE ${seeds}/pandas.csv "cell,G1,G2,G3\nc1,0,1,2\nc2,3.0,0,4.5\nc3,0,0,1\n")
file(WRITE ${seeds}/rstyle.csv "\"G1\",\"G2\"\n\"c1\",1,0\n\"c2\",0,2\r\n")
file(WRITE ${seeds}/genes.tsv "gene\tAAAC-1\tAAAG-1\nCD3E\t1\t0\nMS4A1\t0\t12\n")
if(DEFINED H5AD_SEED AND EXISTS ${H5AD_SEED})
  file(COPY ${H5AD_SEED} DESTINATION ${seeds})
endif()

# Scratch files go to a RAM disk when there is one: every input writes several files.
if(IS_DIRECTORY /dev/shm)
  set(ENV{TMPDIR} /dev/shm)
endif()

execute_process(
  COMMAND ${FUZZER} -runs=${RUNS} -seed=1 -max_len=100000 -timeout=120 -rss_limit_mb=4096
          -print_final_stats=1 -artifact_prefix=${WORK_DIR}/ ${corpus} ${seeds}
  WORKING_DIRECTORY ${WORK_DIR}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB found ${WORK_DIR}/crash-* ${WORK_DIR}/leak-* ${WORK_DIR}/timeout-* ${WORK_DIR}/oom-*)
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}); reproduce with: ${FUZZER} ${found}")
endif()
