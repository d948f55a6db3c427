#!/bin/bash
# ExecStopPost of kiste-vm-test.service: reports the command's exit status to the host (a signal
# as 128+N, like a shell). The unit's SuccessAction/FailureAction then power the guest off.
. /run/kiste-vm/lib.sh
case "${EXIT_CODE:-}" in
exited) status=$EXIT_STATUS ;;
killed | dumped) status=$((128 + $(kill -l "$EXIT_STATUS"))) ;;
*) status=125 ;;
esac
kvm_report "exit $status"
