"""The annotation pipeline (Fig. 4): narratives → noun objects → pseudo-masks → propagation → point candidates."""
