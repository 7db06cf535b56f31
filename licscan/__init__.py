"""licscan: does this build output comply with NVIDIA's CUDA EULA and the licenses of the NVIDIA parts inside it?"""

__version__ = "0.1.0"
