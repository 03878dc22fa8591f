/* Two functions Debian's HIP 7.2.4 imports from ROCr (hsa_amd_ais_file_read and
 * hsa_amd_ais_file_write, version ROCR_1, HSA AMD extension 1.14) that the ROCr
 * source scripts/setup-rocm.sh builds (upstream commit 1b1610fc2, interface 1.13)
 * does not have yet. libamdhip64.so.7 is linked BIND_NOW, so without them it does
 * not load at all. That build links this library (DT_NEEDED, found through
 * $ORIGIN). Both answer HSA_STATUS_ERROR without reading their arguments: file
 * I/O straight to device memory is nothing the model GPU or the tests use. */
#define HSA_STATUS_ERROR 0x1000

int hsa_amd_ais_file_read();
int hsa_amd_ais_file_write();

int hsa_amd_ais_file_read()
{
    return HSA_STATUS_ERROR;
}

int hsa_amd_ais_file_write()
{
    return HSA_STATUS_ERROR;
}
