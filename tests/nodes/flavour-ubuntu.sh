# Flavour ubuntu (a test double): Debian's packages, but the release files say Ubuntu 24.04
# "noble", so kprov takes its Ubuntu code paths (Docker's ubuntu repository, codename noble).
rm -f /etc/os-release /usr/lib/os-release
cat > /usr/lib/os-release <<'OSR'
PRETTY_NAME="Ubuntu 24.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.3 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=noble
OSR
ln -s ../usr/lib/os-release /etc/os-release
printf 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=24.04\nDISTRIB_CODENAME=noble\nDISTRIB_DESCRIPTION="Ubuntu 24.04.3 LTS"\n' > /etc/lsb-release
