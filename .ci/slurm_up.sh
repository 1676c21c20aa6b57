#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests/test_slurm.py (CI; needs root and Debian's
# slurm-wlm, slurmdbd, mariadb-server, munge). Idempotent: a running cluster is left as it is.
# Accounting (slurmdbd on MariaDB) is on because the Snakemake SLURM executor asks sacct for job states.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then echo "slurm_up: needs root"; exit 1; fi
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
    (timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq \
        slurm-wlm slurmdbd mariadb-server munge) >/dev/null 2>&1 || { echo "slurm_up: cannot install slurm-wlm"; exit 1; }
fi
if sinfo -h -o %T 2>/dev/null | grep -qE "idle|mix|alloc"; then echo "slurm_up: cluster already up"; exit 0; fi

HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/run/mysqld

# munge: the authentication SLURM's daemons and commands share
[ -s /etc/munge/munge.key ] || (mungekey --create 2>/dev/null || create-munge-key -f) >/dev/null 2>&1
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged

# MariaDB for slurmdbd
chown mysql:mysql /var/run/mysqld
if ! pgrep -x mariadbd >/dev/null && ! pgrep -x mysqld >/dev/null; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null 2>&1
    (mysqld_safe --user=mysql >/var/log/slurm/mysqld.log 2>&1 &)
    for _ in $(seq 60); do mariadb -e "select 1" >/dev/null 2>&1 && break; sleep 1; done
fi
mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'a2v-ci';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=a2v-ci
StorageLoc=slurm_acct_db
EOF
chmod 600 /etc/slurm/slurmdbd.conf

cat > /etc/slurm/slurm.conf <<EOF
ClusterName=a2v
SlurmctldHost=${HOST}
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
AccountingStoreFlags=job_comment
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
MinJobAge=3600
NodeName=${HOST} CPUs=${CPUS} RealMemory=${MEM} State=UNKNOWN
PartitionName=cpu Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF

pgrep -x slurmdbd >/dev/null || slurmdbd
for _ in $(seq 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 1; done
sacctmgr -i add cluster a2v >/dev/null 2>&1 || true
sacctmgr -i add account a2v Cluster=a2v >/dev/null 2>&1 || true
sacctmgr -i add user root Account=a2v DefaultAccount=a2v >/dev/null 2>&1 || true
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do sinfo -h -o %T 2>/dev/null | grep -qE "idle|mix|alloc" && break; sleep 1; done
scontrol update NodeName="${HOST}" State=RESUME >/dev/null 2>&1 || true
sinfo
echo "slurm_up: one-node cluster a2v up (${CPUS} CPUs, ${MEM} MB)"
