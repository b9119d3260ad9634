"""The baseline network and the three context modules (SDN, DDSM, PDN), built from params."""
