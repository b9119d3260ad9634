"""segrepro: a DVC pipeline that reproduces SDN, DDSM and PDN on a shared baseline."""

__version__ = "0.1.0"
