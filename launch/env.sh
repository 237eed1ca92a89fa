# env.sh - sourced by the launch scripts: the environment every Phalanx job needs.
#
# Open MPI refuses to run as root unless told, and this machine has fewer cores than the ranks
# of the main job (8 ranks on 2 cores), so oversubscription must be allowed. Set only when root
# and only if the user has not set them.
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
  export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
fi
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
# Waiting ranks yield the core instead of spinning (8 ranks share 2 cores here).
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
# No InfiniBand/verbs on these machines: keep Open MPI from probing for it on every start.
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp}
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1}
# One BLAS thread per rank unless the config says otherwise (the trainer sets its own count).
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
