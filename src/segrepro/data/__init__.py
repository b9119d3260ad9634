"""CamVid: download, preprocessing, class weights, splits and augmentation."""
