"""The embedding map: projections, clustering and cluster keywords."""
