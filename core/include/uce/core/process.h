#pragma once
// Process-wide settings that must be in place before the math libraries start.

namespace uce {

// Makes idle OpenMP worker threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE) unless
// the user chose a policy. LibTorch's OpenMP workers spin for a while after each parallel
// region, and OpenBLAS's own worker threads wait for the same cores: on a 2-core machine a
// profile of `uce train` showed ~60 % of the time spinning or yielding and 10 % in GEMMs, and
// the passive policy made the same training steps 1.8x faster. libgomp reads the variable once,
// when it is loaded, so the process sets it and replaces itself with a fresh copy
// (execv of /proc/self/exe with the same arguments). Call first thing in main(); on any failure
// the process simply goes on with the default policy. Linux only; elsewhere it does nothing.
void preferPassiveOpenMpWait(char** argv);

}  // namespace uce
